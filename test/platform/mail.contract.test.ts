import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestEmail, invitationEmail, welcomeEmail } from '../../src/modules/mail/templates.js';
import type { Mailer } from '../../src/platform/mail/index.js';
import { createLogMailer } from '../../src/platform/mail/log.js';
import { createSmtpMailer } from '../../src/platform/mail/smtp.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

/**
 * One contract for both Mailer adapters. Each harness says where a sent message ends up (the
 * SMTP server's mailbox, or the log) and reads it back from there, so every assertion is about
 * what actually arrived, not what the adapter was handed.
 */
interface Delivered {
  /** Recipients as the destination saw them. */
  to: string[];
  subject: string;
  messageId: string;
  text: string | undefined;
  html: string | undefined;
}

interface Harness {
  mailer: Mailer;
  /** Waits for the message with this Message-ID to arrive; all arrivals with it. */
  delivered(messageId: string): Promise<Delivered[]>;
  close(): Promise<void>;
}

const FROM = 'Quire <no-reply@quire.localhost>';
const APP_URL = 'https://app.quire.test';

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const adapters: { name: 'smtp' | 'log'; create(): Promise<Harness> }[] = [
  {
    name: 'smtp',
    async create() {
      const server: TestSmtpServer = await startSmtpServer();
      const mailer = createSmtpMailer({ url: server.url, from: FROM, timeoutMs: 5_000 });
      return {
        mailer,
        async delivered(messageId) {
          const hits = server.messages.filter((m) => m.messageId === messageId);
          return hits.map((m) => ({
            to: m.envelope.to,
            subject: m.subject,
            messageId: m.messageId,
            text: m.text,
            html: m.html,
          }));
        },
        async close() {
          await mailer.close();
          await server.stop();
        },
      };
    },
  },
  {
    name: 'log',
    async create() {
      const lines: Record<string, unknown>[] = [];
      const stream = { write: (line: string) => void lines.push(JSON.parse(line)) };
      const mailer = createLogMailer(pino({ level: 'info' }, stream));
      return {
        mailer,
        async delivered(messageId) {
          const entries = lines
            .map((l) => l.mail as Record<string, unknown> | undefined)
            .filter((m): m is Record<string, unknown> => m?.messageId === messageId);
          return entries.map((m) => ({
            to: [String(m.to)],
            subject: String(m.subject),
            messageId: String(m.messageId),
            text: typeof m.text === 'string' ? m.text : undefined,
            html: typeof m.html === 'string' ? m.html : undefined,
          }));
        },
        async close() {
          await mailer.close();
        },
      };
    },
  },
];

describe.each(adapters)('Mailer contract: $name adapter', (adapter) => {
  let h: Harness;
  beforeAll(async () => {
    h = await adapter.create();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The one arrival of `messageId` (fails on none or several). */
  const deliveredOnce = async (messageId: string) => {
    let arrivals: Delivered[] = [];
    await waitFor(`message ${messageId}`, async () => {
      arrivals = await h.delivered(messageId);
      return arrivals.length > 0 ? true : undefined;
    });
    expect(arrivals, `${messageId} arrived ${arrivals.length} times`).toHaveLength(1);
    return arrivals[0]!;
  };

  it('reports its kind', () => {
    expect(h.mailer.kind).toBe(adapter.name);
  });

  it('send returns a messageId, a fresh one per message without an idempotency key', async () => {
    const mail = welcomeEmail({ name: 'Ada', appUrl: APP_URL, verifyUrl: `${APP_URL}/verify-email?token=t` });
    const a = await h.mailer.send({ to: 'ada@example.com', ...mail });
    const b = await h.mailer.send({ to: 'ada@example.com', ...mail });
    expect(a.messageId).toMatch(/^<[^<>\s@]+@[^<>\s@]+>$/);
    expect(b.messageId).toMatch(/^<[^<>\s@]+@[^<>\s@]+>$/);
    expect(a.messageId).not.toBe(b.messageId);
    expect((await h.delivered(a.messageId)).length).toBe(1);
    expect((await h.delivered(b.messageId)).length).toBe(1);
  });

  it('the message reaches its destination with to, subject and both the HTML and the text part', async () => {
    const to = `reader-${randomUUID().slice(0, 8)}@example.com`;
    const mail = welcomeEmail({ name: 'Grace Hopper', appUrl: APP_URL, verifyUrl: `${APP_URL}/verify-email?token=t` });
    const { messageId } = await h.mailer.send({ to, ...mail });
    const got = await deliveredOnce(messageId);
    expect(got.to).toEqual([to]);
    expect(got.subject).toBe('Welcome to Quire');
    expect(got.messageId).toBe(messageId);
    expect(got.text).toBe(mail.text);
    expect(got.html).toBe(mail.html);
    expect(got.html).toContain('<h1 style="font-size:22px">Welcome, Grace Hopper</h1>');
    expect(got.text).toContain('Welcome, Grace Hopper');
    expect(got.text).not.toMatch(/<[a-z]/i);
  });

  it('the idempotencyKey becomes the Message-ID: the same key sent twice is recognisably the same message', async () => {
    const userId = randomUUID();
    const mail = welcomeEmail({ name: 'Key', appUrl: APP_URL, verifyUrl: `${APP_URL}/verify-email?token=t` });
    const first = await h.mailer.send({ to: 'key@example.com', ...mail, idempotencyKey: `welcome:${userId}` });
    expect(first.messageId).toBe(`<welcome.${userId}@quire.localhost>`);
    const got = await deliveredOnce(first.messageId);
    expect(got.messageId).toBe(first.messageId);

    // A retry after a crash (the first send went out, the job did not record it) carries the same id.
    const again = await h.mailer.send({ to: 'key@example.com', ...mail, idempotencyKey: `welcome:${userId}` });
    expect(again.messageId).toBe(first.messageId);
    const both = await h.delivered(first.messageId);
    expect(both.map((m) => m.messageId)).toEqual([first.messageId, first.messageId]);
  });

  it('templates escape HTML: a hostile name is escaped in the HTML part and verbatim in the text part', async () => {
    const name = '<script>alert("pwned")</script> & <b>Co</b>';
    const mail = welcomeEmail({ name, appUrl: APP_URL, verifyUrl: `${APP_URL}/verify-email?token=t` });
    const { messageId } = await h.mailer.send({ to: 'xss@example.com', ...mail });
    const got = await deliveredOnce(messageId);
    expect(got.html).toContain(
      'Welcome, &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;',
    );
    expect(got.html).not.toContain('<script');
    expect(got.html).not.toContain('<b>');
    expect(got.text).toContain(`Welcome, ${name}`);
  });
});

describe('mail templates escape every interpolated value in the HTML part', () => {
  const hostile = `"><img src=x onerror=alert(1)>&'`;
  const escaped = '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;&#39;';

  it('welcome: the app URL inside href', () => {
    const mail = welcomeEmail({
      name: 'A',
      appUrl: `https://x.test/${hostile}`,
      verifyUrl: `https://x.test/${hostile}`,
    });
    expect(mail.html).toContain(`href="https://x.test/${escaped}"`);
    expect(mail.html).not.toContain('<img');
    expect(mail.text).toContain(`https://x.test/${hostile}`);
  });

  it('invitation: the tenant name (subject and text stay verbatim) and the role', () => {
    const mail = invitationEmail({ tenantName: hostile, role: `<i>admin</i>`, appUrl: APP_URL });
    expect(mail.html).toContain(`<h1 style="font-size:22px">Join ${escaped}</h1>`);
    expect(mail.html).toContain('as &lt;i&gt;admin&lt;/i&gt;');
    expect(mail.html).not.toContain('<img');
    expect(mail.html).not.toContain('<i>');
    expect(mail.subject).toBe(`You are invited to ${hostile} on Quire`);
    expect(mail.text).toContain(`Join ${hostile}`);
  });

  it('digest: post titles and URLs in the list, and the tenant name in the <title>', () => {
    const mail = digestEmail({
      tenantName: '<Acme>',
      posts: [{ title: hostile, url: `https://acme.test/${hostile}`, publishedAt: new Date().toISOString() }],
    });
    expect(mail.html).toContain(`<li style="margin:6px 0"><a href="https://acme.test/${escaped}">${escaped}</a></li>`);
    expect(mail.html).toContain('<title>&lt;Acme&gt;: 1 new post this week</title>');
    expect(mail.html).not.toContain('<img');
    expect(mail.text).toContain(`- ${hostile}\n  https://acme.test/${hostile}`);
  });
});
