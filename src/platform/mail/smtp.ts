import nodemailer from 'nodemailer';
import { type Mailer, messageIdFor } from './index.js';

/** SMTP via nodemailer: SMTP_URL carries host, port, TLS (smtps://) and credentials. */
export function createSmtpMailer(opts: { url: string; from: string; timeoutMs: number }): Mailer {
  const url = new URL(opts.url);
  const transport = nodemailer.createTransport(
    {
      host: url.hostname,
      port: url.port ? Number(url.port) : url.protocol === 'smtps:' ? 465 : 587,
      secure: url.protocol === 'smtps:',
      auth: url.username
        ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
        : undefined,
      // A local relay without STARTTLS is allowed; anything offering TLS is upgraded.
      ignoreTLS: url.searchParams.get('ignoreTLS') === 'true',
      connectionTimeout: opts.timeoutMs,
      greetingTimeout: opts.timeoutMs,
      socketTimeout: opts.timeoutMs,
    },
    { from: opts.from },
  );
  const domain = (/@([^>\s]+)/.exec(opts.from)?.[1] ?? 'quire.localhost').toLowerCase();
  return {
    kind: 'smtp',
    async send(m) {
      const info = await transport.sendMail({
        to: m.to,
        subject: m.subject,
        html: m.html,
        text: m.text,
        ...(m.idempotencyKey ? { messageId: messageIdFor(m.idempotencyKey, domain) } : {}),
      });
      return { messageId: String(info.messageId) };
    },
    async close() {
      transport.close();
    },
  };
}
