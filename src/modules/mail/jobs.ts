import type { MailMessage } from '../../platform/mail/index.js';
import type { AuthService } from '../auth/service.js';
import type { JobPlatform } from '../jobs/platform.js';
import { invitationEmail, welcomeEmail } from './templates.js';

/** Sends through the circuit breaker: while SMTP is down the job is put back, not failed. */
export type SendMail = (message: MailMessage) => Promise<{ messageId: string }>;

export function registerMailJobs(jobs: JobPlatform, deps: { send: SendMail; auth: AuthService; publicUrl: string }) {
  jobs.handle('email', 'welcome', async (job) => {
    const userId = String(job.data.userId);
    const user = await deps.auth.getUser(userId);
    // The account is gone (deleted before the email went out): nothing to send.
    if (!user) return { skipped: 'user not found' };
    const mail = welcomeEmail({ name: user.name, appUrl: deps.publicUrl });
    const sent = await deps.send({ to: user.email, ...mail, idempotencyKey: job.idempotencyKey ?? job.id });
    return { messageId: sent.messageId };
  });

  jobs.handle('email', 'invitation', async (job) => {
    const d = job.data as { email: string; role: string; tenantName: string };
    const mail = invitationEmail({ tenantName: d.tenantName, role: d.role, appUrl: deps.publicUrl });
    const sent = await deps.send({ to: d.email, ...mail, idempotencyKey: job.idempotencyKey ?? job.id });
    return { messageId: sent.messageId };
  });
}
