import type { MailMessage } from '../../platform/mail/index.js';
import type { AuthService } from '../auth/service.js';
import type { JobPlatform } from '../jobs/platform.js';
import { invitationEmail, passwordResetEmail, verifyEmail, welcomeEmail } from './templates.js';

/** Sends through the circuit breaker: while SMTP is down the job is put back, not failed. */
export type SendMail = (message: MailMessage) => Promise<{ messageId: string }>;

export function registerMailJobs(jobs: JobPlatform, deps: { send: SendMail; auth: AuthService; publicUrl: string }) {
  // Links point at the app; it posts the token to /auth/verify-email or /auth/reset-password.
  const link = (path: string, token: string) => `${deps.publicUrl}/${path}?token=${encodeURIComponent(token)}`;

  jobs.handle('email', 'welcome', async (job) => {
    const userId = String(job.data.userId);
    const user = await deps.auth.getUser(userId);
    // The account is gone (deleted before the email went out): nothing to send.
    if (!user) return { skipped: 'user not found' };
    // Made here, not at registration: the token exists only in the email (a retry makes a new
    // one and voids the unsent one), never in the outbox or the queue.
    const token = await deps.auth.createEmailToken(user.id, 'verify-email');
    const mail = welcomeEmail({ name: user.name, appUrl: deps.publicUrl, verifyUrl: link('verify-email', token) });
    const sent = await deps.send({ to: user.email, ...mail, idempotencyKey: job.idempotencyKey ?? job.id });
    return { messageId: sent.messageId };
  });

  jobs.handle('email', 'verify-email', async (job) => {
    const user = await deps.auth.getUser(String(job.data.userId));
    if (!user) return { skipped: 'user not found' };
    const token = await deps.auth.createEmailToken(user.id, 'verify-email');
    const mail = verifyEmail({ name: user.name, verifyUrl: link('verify-email', token) });
    const sent = await deps.send({ to: user.email, ...mail, idempotencyKey: job.idempotencyKey ?? job.id });
    return { messageId: sent.messageId };
  });

  // Requested for any address (the request path does the same work either way): here an
  // unknown address ends quietly, with nothing sent.
  jobs.handle('email', 'password-reset', async (job) => {
    const user = await deps.auth.findUserByEmail(String(job.data.email));
    if (!user) return { skipped: 'no account' };
    const token = await deps.auth.createEmailToken(user.id, 'reset-password');
    const mail = passwordResetEmail({ name: user.name, resetUrl: link('reset-password', token) });
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
