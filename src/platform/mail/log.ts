import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type Mailer, messageIdFor } from './index.js';

/** No SMTP server configured: each message is written to the log (text part, not HTML). */
export function createLogMailer(log: Logger): Mailer {
  return {
    kind: 'log',
    async send(m) {
      const messageId = messageIdFor(m.idempotencyKey ?? randomUUID(), 'quire.localhost');
      log.info({ mail: { to: m.to, subject: m.subject, messageId, text: m.text } }, `mail to ${m.to}: ${m.subject}`);
      return { messageId };
    },
    async close() {},
  };
}
