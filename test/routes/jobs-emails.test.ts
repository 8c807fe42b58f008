import { asc, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { tables } from '../../src/platform/db/index.js';
import { jobIdFor } from '../../src/platform/queue/index.js';
import { createTestStack } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createTenant, createUser, PASSWORD, type TestUser } from '../helpers/factories.js';
import { captureLog, type LogEntry, type ModeEnv, modeEnv, queueModes, waitFor, waitForJob } from '../helpers/jobs.js';

const { outbox } = tables;
type Mail = { to: string; subject: string; messageId: string };

/**
 * Emails go through the outbox: the write records the work in its own transaction, the relay
 * enqueues it on `email`, the worker sends it with the log mailer (no SMTP_URL), whose lines
 * this suite reads from the container's logger.
 */
describe.each(queueModes)('emails recorded through the outbox, $name', (mode) => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let logs: LogEntry[];
  let admin: TestUser;

  beforeAll(async () => {
    menv = await modeEnv(mode, 'emails');
    tdb = await mode.kind.create();
    const captured = captureLog();
    logs = captured.entries;
    ({ app, container } = await createTestStack(tdb.db, menv.env, { log: captured.log }));
    await container.startWorkers();
    admin = await createUser(app);
    await container.services.auth.setPlatformAdmin(admin.email, true);
    // The admin's own welcome email settles first, so the queue counts below move only for ours.
    await waitForJob(app, admin.auth, jobIdFor(`welcome:${admin.id}`), ['completed']);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
  });

  const mailsTo = (email: string) =>
    logs.filter((e) => (e.mail as Mail | undefined)?.to === email).map((e) => e.mail as Mail);
  const outboxRows = () => tdb.db.system.select().from(outbox).orderBy(asc(outbox.id));
  const emailCounts = async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/queues/stats', headers: admin.auth });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data.email as Record<string, number>;
  };
  const register = (email: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email, password: PASSWORD, name: 'Newcomer' },
    });

  it('a registration records exactly one welcome email, which the worker sends', async () => {
    const before = { rows: (await outboxRows()).length, counts: await emailCounts() };
    const email = `welcome-${Date.now()}@example.com`;
    const res = await register(email);
    expect(res.statusCode, res.body).toBe(201);
    const userId = res.json().data.user.id as string;

    const rows = (await outboxRows()).slice(before.rows);
    expect(rows).toEqual([
      expect.objectContaining({
        tenantId: null,
        queue: 'email',
        name: 'welcome',
        payload: { userId },
        idempotencyKey: `welcome:${userId}`,
      }),
    ]);
    // The row's key is the job's id: one row, one job, completed by the email worker.
    const job = await waitForJob(app, admin.auth, jobIdFor(`welcome:${userId}`), ['completed', 'failed']);
    expect(job).toMatchObject({ queue: 'email', name: 'welcome', state: 'completed', tenantId: null, attempts: 1 });
    const sent = await waitFor('the welcome mail in the log', () =>
      mailsTo(email).length ? mailsTo(email) : undefined,
    );
    expect(sent).toEqual([expect.objectContaining({ to: email, subject: 'Welcome to Quire' })]);
    expect(job.result).toEqual({ messageId: sent[0]?.messageId });

    const [row] = await tdb.db.system
      .select()
      .from(outbox)
      .where(eq(outbox.idempotencyKey, `welcome:${userId}`));
    expect(row?.dispatchedAt).not.toBeNull();
    const after = await emailCounts();
    expect(after).toEqual({ ...before.counts, completed: (before.counts.completed ?? 0) + 1 });
  });

  it('a registration that fails (duplicate email, 409) records nothing and sends nothing', async () => {
    const existing = await createUser(app);
    await waitFor('the first welcome mail', () => mailsTo(existing.email).length === 1 || undefined);
    const rows = (await outboxRows()).length;
    expectError(await register(existing.email.toUpperCase()), 409, 'email_taken');
    expect((await outboxRows()).length).toBe(rows);
    // The relay has nothing new to move and the only mail to the address is the first one.
    expect(await container.relay.runOnce()).toBe(0);
    expect(mailsTo(existing.email)).toHaveLength(1);
  });

  it('inviting an unknown email records an invitation email under the tenant, sent to that address', async () => {
    const t = await createTenant(app);
    const before = (await outboxRows()).length;
    const email = `invitee-${Date.now()}@example.com`;
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/tenants/${t.id}/members`,
      headers: t.owner.auth,
      payload: { email, role: 'editor' },
    });
    expect(res.statusCode, res.body).toBe(202);
    const { invitationId } = res.json().data as { invitationId: string };

    // Recorded by the tenant-role transaction (RLS lets a tenant insert its own rows only).
    const rows = (await outboxRows()).slice(before);
    expect(rows).toEqual([
      expect.objectContaining({
        tenantId: t.id,
        queue: 'email',
        name: 'invitation',
        payload: { email, role: 'editor', tenantName: t.name },
        idempotencyKey: expect.stringMatching(new RegExp(`^invitation:${invitationId}:`)),
      }),
    ]);
    const jobId = jobIdFor(rows[0]?.idempotencyKey);
    // The job acts for the tenant: its owner follows it there; another tenant's owner cannot.
    const job = await waitForJob(app, t.as(t.owner), jobId, ['completed', 'failed']);
    expect(job).toMatchObject({ queue: 'email', name: 'invitation', state: 'completed', tenantId: t.id });
    const other = await createTenant(app);
    expectError(
      await app.inject({ method: 'GET', url: `/api/v1/jobs/${jobId}`, headers: other.as(other.owner) }),
      404,
      'not_found',
    );
    const sent = await waitFor('the invitation mail in the log', () =>
      mailsTo(email).length ? mailsTo(email) : undefined,
    );
    expect(sent).toEqual([expect.objectContaining({ to: email, subject: `You are invited to ${t.name} on Quire` })]);
  });

  it('adding an existing account (201 added) records no email', async () => {
    const t = await createTenant(app);
    const member = await createUser(app);
    const before = (await outboxRows()).length;
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/tenants/${t.id}/members`,
      headers: t.owner.auth,
      payload: { email: member.email, role: 'viewer' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect((await outboxRows()).length).toBe(before);
  });
});
