import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type Mailer, messageIdFor } from './index.js';

/**
 * No SMTP server configured: each message is written to the log, both parts, so the log is a
 * complete destination (the mail contract holds for it as for SMTP: what a template rendered into
 * the HTML part can be checked there, escaping included).
 */
export function createLogMailer(log: Logger): Mailer {
  return {
    kind: 'log',
    async send(m) {
      const messageId = messageIdFor(m.idempotencyKey ?? randomUUID(), 'quire.localhost');
      log.info(
        { mail: { to: m.to, subject: m.subject, messageId, text: m.text, html: m.html } },
        `mail to ${m.to}: ${m.subject}`,
      );
      return { messageId };
    },
    async close() {},
  };
}
