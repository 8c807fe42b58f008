import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { queueNames } from '../../src/modules/jobs/queues.js';
import type { MemberRole } from '../../src/platform/db/schema.js';
import type { JobInfo } from '../../src/platform/queue/index.js';
import { createTestStack } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createTenant, createUser, type TestTenant, type TestUser } from '../helpers/factories.js';
import {
  captureLog,
  type JobDto,
  type LogEntry,
  type ModeEnv,
  modeEnv,
  queueModes,
  waitFor,
  waitForJob,
} from '../helpers/jobs.js';

/**
 * The operations API (/jobs/:id, /jobs/:id/retry, /queues/stats, /queues/:name/failed) on both
 * queue backends, with the workers running in the test app. `media` has no production handler,
 * so the suite registers its own there; its policy is shortened (3 attempts, 100 ms fixed
 * backoff; pg-boss rounds the delay up to 1 s) so a failing job dead-letters in seconds.
 */
const MEDIA_POLICY = { attempts: 3, backoff: { type: 'fixed' as const, delayMs: 100 } };

describe.each(queueModes)('job operations API, $name', (mode) => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let logs: LogEntry[];
  const deadLetters: { info: JobInfo; err: Error }[] = [];
  let flakyFixed = false;
  let admin: TestUser;
  let a: TestTenant;
  let staff: Record<MemberRole, TestUser>;
  let b: TestTenant;

  beforeAll(async () => {
    menv = await modeEnv(mode, 'jobs');
    tdb = await mode.kind.create();
    const captured = captureLog();
    logs = captured.entries;
    ({ app, container } = await createTestStack(tdb.db, menv.env, {
      log: captured.log,
      policies: { media: MEDIA_POLICY },
    }));
    container.jobs.handle('media', 'always-fails', async () => {
      throw new Error('boom: this job always fails');
    });
    container.jobs.handle('media', 'flaky', async () => {
      if (!flakyFixed) throw new Error('flaky: the dependency is down');
      return { fixed: true };
    });
    container.jobs.handle('media', 'succeeds', async (job) => {
      await job.progress(40);
      return { echoed: job.data.n };
    });
    container.jobs.events.on('job.failed', (info, err) => deadLetters.push({ info, err }));
    await container.startWorkers();

    admin = await createUser(app);
    expect(await container.services.auth.setPlatformAdmin(admin.email, true)).toBe(true);
    a = await createTenant(app);
    staff = { owner: a.owner } as Record<MemberRole, TestUser>;
    for (const role of ['admin', 'editor', 'author', 'viewer'] as const) staff[role] = await createMember(app, a, role);
    b = await createTenant(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
  });

  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: `/api/v1${url}`, headers });
  const retry = (id: string, headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: `/api/v1/jobs/${id}/retry`, headers });
  const enqueue = (name: string, tenant: TestTenant, data: Record<string, unknown> = {}, delayMs?: number) =>
    container.jobs.enqueue('media', name, data, { tenantId: tenant.id, ...(delayMs && { delayMs }) });
  /** Enqueues `name` for `tenant` and waits until it is dead-lettered. */
  async function deadLettered(name: string, tenant: TestTenant): Promise<JobDto> {
    return waitForJob(app, admin.auth, await enqueue(name, tenant), ['failed']);
  }
  const ids = (res: { json(): { data: JobDto[] } }) => res.json().data.map((j) => j.id);

  it("GET /jobs/:id: a platform admin sees any tenant's job; the tenant's owners and admins see it there", async () => {
    const id = await enqueue('succeeds', a, { n: 7 });
    const job = await waitForJob(app, admin.auth, id, ['completed']);
    expect(job).toMatchObject({
      id,
      queue: 'media',
      name: 'succeeds',
      state: 'completed',
      tenantId: a.id,
      progress: 100,
      attempts: 1,
      maxAttempts: MEDIA_POLICY.attempts,
      failedReason: null,
      result: { echoed: 7 },
    });
    expect(job.data).toMatchObject({ n: 7 });
    for (const at of [job.createdAt, job.startedAt, job.finishedAt]) expect(new Date(at ?? '').toISOString()).toBe(at);

    for (const role of ['owner', 'admin'] as const) {
      const res = await get(`/jobs/${id}`, a.as(staff[role]));
      expect(res.statusCode, role).toBe(200);
      expect(res.json().data).toEqual(job);
    }
    for (const role of ['editor', 'author', 'viewer'] as const) {
      expectError(await get(`/jobs/${id}`, a.as(staff[role])), 403, 'forbidden');
    }
    // Another tenant's owner, in their tenant or in one they do not belong to: the job does not exist.
    expectError(await get(`/jobs/${id}`, b.as(b.owner)), 404, 'not_found');
    expectError(await get(`/jobs/${id}`, a.as(b.owner)), 404, 'not_found');
    expectError(await get(`/jobs/${id}`, a.owner.auth), 400, 'tenant_required');
    expectError(await get(`/jobs/${id}`), 401, 'unauthorized');
  });

  it('unknown job ids are 404 for GET and retry, for admins and owners alike', async () => {
    for (const id of [randomUUID(), 'not-a-job-id']) {
      for (const headers of [admin.auth, a.as(a.owner)]) {
        expectError(await get(`/jobs/${id}`, headers), 404, 'not_found');
        expectError(await retry(id, headers), 404, 'not_found');
      }
    }
  });

  it('GET /queues/stats: every queue with its five counts, for platform admins only', async () => {
    const stats = async () => {
      const res = await get('/queues/stats', admin.auth);
      expect(res.statusCode, res.body).toBe(200);
      return res.json().data as Record<string, Record<string, number>>;
    };
    const before = await stats();
    expect(Object.keys(before).sort()).toEqual([...queueNames].sort());
    for (const q of queueNames) {
      expect(Object.keys(before[q] ?? {}).sort(), q).toEqual(['active', 'completed', 'delayed', 'failed', 'waiting']);
      for (const n of Object.values(before[q] ?? {})) expect(Number.isInteger(n) && n >= 0).toBe(true);
    }
    await waitForJob(app, admin.auth, await enqueue('succeeds', a, { n: 1 }), ['completed']);
    await waitForJob(app, admin.auth, await enqueue('succeeds', b, { n: 2 }, 600_000), ['delayed']);
    const after = await stats();
    expect(after.media).toEqual({
      ...before.media,
      completed: (before.media?.completed ?? 0) + 1,
      delayed: (before.media?.delayed ?? 0) + 1,
    });

    for (const role of ['owner', 'admin', 'editor'] as const) {
      expectError(await get('/queues/stats', a.as(staff[role])), 403, 'forbidden');
    }
    expectError(await get('/queues/stats'), 401, 'unauthorized');
  });

  it('a job that keeps failing is dead-lettered after its attempts, with an error log line and a job.failed event', async () => {
    const job = await deadLettered('always-fails', a);
    expect(job).toMatchObject({
      queue: 'media',
      name: 'always-fails',
      state: 'failed',
      tenantId: a.id,
      attempts: MEDIA_POLICY.attempts,
      maxAttempts: MEDIA_POLICY.attempts,
    });
    expect(job.failedReason).toContain('boom: this job always fails');
    expect(job.finishedAt).not.toBeNull();

    const alert = await waitFor('the dead-letter log line', () =>
      logs.find((e) => e.event === 'job.failed' && e.jobId === job.id),
    );
    expect(alert).toMatchObject({ level: 50, queue: 'media', name: 'always-fails', attempts: MEDIA_POLICY.attempts });
    expect((alert.err as { message: string }).message).toContain('boom');
    const event = await waitFor('the job.failed event', () => deadLetters.find((d) => d.info.id === job.id));
    expect(event.info).toMatchObject({ state: 'failed', tenantId: a.id, queue: 'media', name: 'always-fails' });
    expect(event.err.message).toContain('boom');
    // One alert per dead letter; the earlier failures were retries, logged as warnings.
    expect(deadLetters.filter((d) => d.info.id === job.id)).toHaveLength(1);
    expect(logs.filter((e) => e.event === 'job.failed' && e.jobId === job.id)).toHaveLength(1);
    const retries = logs.filter((e) => e.jobId === job.id && e.msg === 'job failed; will retry');
    expect(retries.map((e) => [e.level, e.attempt])).toEqual([
      [40, 1],
      [40, 2],
    ]);
  });

  it('GET /queues/:name/failed: all dead letters for a platform admin, its own for a tenant owner or admin', async () => {
    const [ja, jb] = await Promise.all([deadLettered('always-fails', a), deadLettered('always-fails', b)]);
    const all = await get('/queues/media/failed?limit=100', admin.auth);
    expect(all.statusCode).toBe(200);
    expect(ids(all)).toEqual(expect.arrayContaining([ja.id, jb.id]));
    expect(all.json().data.every((j: JobDto) => j.state === 'failed' && j.queue === 'media')).toBe(true);
    const finished = all.json().data.map((j: JobDto) => Date.parse(j.finishedAt ?? ''));
    expect(finished).toEqual([...finished].sort((x, y) => y - x));

    for (const role of ['owner', 'admin'] as const) {
      const mine = await get('/queues/media/failed?limit=100', a.as(staff[role]));
      expect(mine.statusCode).toBe(200);
      expect(ids(mine)).toContain(ja.id);
      expect(ids(mine)).not.toContain(jb.id);
      expect(mine.json().data.every((j: JobDto) => j.tenantId === a.id)).toBe(true);
    }
    const theirs = await get('/queues/media/failed?limit=100', b.as(b.owner));
    expect(ids(theirs)).toContain(jb.id);
    expect(ids(theirs)).not.toContain(ja.id);

    expect((await get('/queues/media/failed?limit=1', admin.auth)).json().data).toHaveLength(1);
    expect((await get('/queues/digest/failed', admin.auth)).json().data).toEqual([]);
    for (const role of ['editor', 'author', 'viewer'] as const) {
      expectError(await get('/queues/media/failed', a.as(staff[role])), 403, 'forbidden');
    }
    expectError(await get('/queues/media/failed', a.as(b.owner)), 404, 'not_found');
    expectError(await get('/queues/nope/failed', admin.auth), 400, 'validation_failed');
    expectError(await get('/queues/nope/failed', a.as(a.owner)), 400, 'validation_failed');
    expectError(await get('/queues/media/failed?limit=0', admin.auth), 400, 'validation_failed');
    expectError(await get('/queues/media/failed'), 401, 'unauthorized');
  });

  it('POST /jobs/:id/retry replays a dead letter with a fresh set of attempts, in scope only', async () => {
    flakyFixed = false;
    const dead = await deadLettered('flaky', a);
    expect(dead.attempts).toBe(MEDIA_POLICY.attempts);

    expectError(await retry(dead.id, b.as(b.owner)), 404, 'not_found');
    expectError(await retry(dead.id, a.as(b.owner)), 404, 'not_found');
    for (const role of ['editor', 'author', 'viewer'] as const) {
      expectError(await retry(dead.id, a.as(staff[role])), 403, 'forbidden');
    }
    expectError(await retry(dead.id, {}), 401, 'unauthorized');
    expect((await waitForJob(app, admin.auth, dead.id, ['failed'])).attempts).toBe(MEDIA_POLICY.attempts);

    flakyFixed = true;
    const res = await retry(dead.id, a.as(a.owner));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().data).toMatchObject({ id: dead.id, tenantId: a.id, name: 'flaky' });
    expect(res.json().data.state).not.toBe('failed');
    const replayed = await waitForJob(app, a.as(a.owner), dead.id, ['completed']);
    // Attempts started again from one: the replay ran once and succeeded.
    expect(replayed).toMatchObject({ attempts: 1, result: { fixed: true }, failedReason: null, progress: 100 });
    expectError(await retry(dead.id, a.as(a.owner)), 409, 'job_not_failed');
  });

  it("a platform admin retries any tenant's dead letter; a job that fails again is dead-lettered again", async () => {
    const dead = await deadLettered('always-fails', b);
    const res = await retry(dead.id, admin.auth);
    expect(res.statusCode, res.body).toBe(200);
    await waitFor('the second dead-letter event', () =>
      deadLetters.filter((d) => d.info.id === dead.id).length === 2 ? true : undefined,
    );
    const again = await waitForJob(app, admin.auth, dead.id, ['failed']);
    expect(again.attempts).toBe(MEDIA_POLICY.attempts);
  });

  it('retry of a job that is not failed is 409 job_not_failed', async () => {
    const done = await waitForJob(app, admin.auth, await enqueue('succeeds', a, { n: 3 }), ['completed']);
    expect(expectError(await retry(done.id, a.as(a.owner)), 409, 'job_not_failed').message).toContain('completed');
    const later = await waitForJob(app, admin.auth, await enqueue('succeeds', a, { n: 4 }, 600_000), ['delayed']);
    expect(expectError(await retry(later.id, admin.auth), 409, 'job_not_failed').message).toContain('delayed');
    expect((await get(`/jobs/${later.id}`, admin.auth)).json().data.state).toBe('delayed');
  });
});
