import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { jobIdFor } from '../../src/platform/queue/index.js';
import { createTestStack } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createPost, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';
import { captureLog, type ModeEnv, modeEnv, queueModes, waitFor } from '../helpers/jobs.js';

/**
 * Scheduling: POST /posts/:id/schedule {publishAt} → `scheduled`; the job platform publishes it
 * at that time (a delayed job recorded through the outbox), a sweep publishes anything overdue,
 * unscheduling or rescheduling makes the old job a no-op, and a schedule survives a restart of
 * the workers.
 */
describe.each(queueModes)('scheduled publication, $name', (mode) => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let t: TestTenant;
  let author: TestUser;
  let viewer: TestUser;
  const logs = captureLog();

  beforeAll(async () => {
    menv = await modeEnv(mode, 'schedule');
    tdb = await mode.kind.create();
    ({ app, container } = await createTestStack(tdb.db, menv.env, { log: logs.log }));
    await container.startWorkers();
    t = await createTenant(app);
    author = await createMember(app, t, 'author');
    viewer = await createMember(app, t, 'viewer');
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
  });

  const schedule = (id: string, publishAt: Date | string, as: TestUser = t.owner, extra: object = {}) =>
    app.inject({
      method: 'POST',
      url: `/api/v1/posts/${id}/schedule`,
      headers: t.as(as),
      payload: { publishAt: typeof publishAt === 'string' ? publishAt : publishAt.toISOString(), ...extra },
    });
  const getPost = async (id: string) =>
    (await app.inject({ url: `/api/v1/posts/${id}`, headers: t.as(t.owner) })).json().data;
  const inMs = (ms: number) => new Date(Date.now() + ms);
  /** Polls the post until it is published (the job platform's doing), failing with `what` at the deadline. */
  const publishedSoon = (id: string, what: string, ms: number) =>
    waitFor(
      what,
      async () => {
        const p = await getPost(id);
        return p.status === 'published' ? p : undefined;
      },
      ms,
    );

  it('schedules a draft and publishes it at its time, through the job platform', async () => {
    const post = await createPost(app, t, author);
    const at = inMs(1_500);
    const res = await schedule(post.id, at, author);
    expect(res.statusCode, res.body).toBe(200);
    const scheduled = res.json().data;
    expect(scheduled).toMatchObject({ status: 'scheduled', publishedAt: at.toISOString(), version: post.version + 1 });
    expect(res.headers.etag).toBe(`"${post.version + 1}"`);

    // Not before its time: listed as scheduled, not published.
    const list = await app.inject({ url: '/api/v1/posts?status=scheduled', headers: t.as(t.owner) });
    expect(list.json().data.map((p: { id: string }) => p.id)).toContain(post.id);

    const published = await publishedSoon(post.id, 'the scheduled post to be published', 20_000);
    expect(published.publishedAt).toBe(at.toISOString());
    expect(published.version).toBe(post.version + 2);
    // Published at or after its time, never before.
    expect(Date.parse(published.updatedAt)).toBeGreaterThanOrEqual(at.getTime());
  });

  it('refuses a time that is not in the future, a post that is not a draft, and roles that cannot publish', async () => {
    const post = await createPost(app, t, t.owner);
    expectError(await schedule(post.id, inMs(-60_000)), 400, 'publish_at_in_past');
    expectError(await schedule(post.id, 'tomorrow'), 400, 'validation_failed');
    expectError(await schedule(post.id, inMs(60_000), viewer), 403, 'forbidden');
    const other = await createPost(app, t, t.owner);
    // An author may schedule only their own posts.
    expectError(await schedule(other.id, inMs(60_000), author), 403, 'forbidden');
    await app.inject({ method: 'POST', url: `/api/v1/posts/${post.id}/publish`, headers: t.as(t.owner) });
    expectError(await schedule(post.id, inMs(60_000)), 409, 'not_a_draft');
    // A stale version is a 409 like any other write.
    expectError(await schedule(other.id, inMs(60_000), t.owner, { version: 99 }), 409, 'version_conflict');
    expect((await getPost(other.id)).status).toBe('draft');
  });

  it('unschedule returns the post to draft, and its pending job then does nothing', async () => {
    const post = await createPost(app, t, t.owner);
    const at = inMs(1_000);
    const scheduled = await schedule(post.id, at);
    expect(scheduled.statusCode).toBe(200);
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/posts/${post.id}/unschedule`,
      headers: t.as(t.owner),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().data).toMatchObject({ status: 'draft', publishedAt: null });
    // The job for that time runs and finds the post no longer scheduled for it.
    const key = `publish:${t.id}:${post.id}:${at.toISOString()}:${scheduled.json().data.version}`;
    const job = await waitFor(
      'the cancelled job to run',
      async () => {
        const j = await container.queue.getJob(jobIdFor(key));
        return j?.state === 'completed' ? j : undefined;
      },
      15_000,
    );
    expect(job.result).toEqual({ skipped: 'no longer scheduled for this time' });
    expect((await getPost(post.id)).status).toBe('draft');
    expectError(
      await app.inject({ method: 'POST', url: `/api/v1/posts/${post.id}/unschedule`, headers: t.as(t.owner) }),
      409,
      'not_scheduled',
    );
  });

  it('rescheduling moves the time: the post is published at the new time only', async () => {
    const post = await createPost(app, t, t.owner);
    const first = inMs(800);
    const second = inMs(3_000);
    expect((await schedule(post.id, first)).statusCode).toBe(200);
    expect((await schedule(post.id, second)).statusCode).toBe(200);
    // Past the first time (and its job), still scheduled for the second.
    await new Promise((r) => setTimeout(r, first.getTime() - Date.now() + 1_200));
    expect(await getPost(post.id)).toMatchObject({ status: 'scheduled', publishedAt: second.toISOString() });
    const published = await publishedSoon(post.id, 'the rescheduled post to be published', 20_000);
    expect(published.publishedAt).toBe(second.toISOString());
  });

  it('publishing a scheduled post by hand publishes it now, not at its scheduled time', async () => {
    const post = await createPost(app, t, t.owner);
    expect((await schedule(post.id, inMs(3_600_000))).statusCode).toBe(200);
    const before = Date.now();
    const res = await app.inject({ method: 'POST', url: `/api/v1/posts/${post.id}/publish`, headers: t.as(t.owner) });
    expect(res.statusCode, res.body).toBe(200);
    const publishedAt = Date.parse(res.json().data.publishedAt);
    expect(publishedAt).toBeGreaterThanOrEqual(before - 1_000);
    expect(publishedAt).toBeLessThan(before + 60_000);
  });

  it('the sweep publishes a scheduled post whose job never came (a lost timer delays, never drops)', async () => {
    const post = await createPost(app, t, t.owner);
    // A scheduled post with no job behind it, its time already past: as if the timer were lost.
    await tdb.db.query(
      `UPDATE posts SET status = 'scheduled', published_at = now() - interval '1 minute' WHERE tenant_id = $1 AND id = $2`,
      [t.id, post.id],
    );
    await container.jobs.enqueue('maintenance', 'publish-overdue', {});
    const published = await publishedSoon(post.id, 'the sweep to publish the overdue post', 20_000);
    expect(published.version).toBe(post.version + 1);
    expect(logs.entries.some((e) => e.postId === post.id && e.bySweep === true)).toBe(true);
  });

  it('a schedule survives a restart of the workers: the next process publishes it', async () => {
    const post = await createPost(app, t, t.owner);
    const at = inMs(2_000);
    expect((await schedule(post.id, at)).statusCode).toBe(200);
    // The relay has put the delayed job in the queue; then every worker stops.
    await waitFor('the schedule to leave the outbox', async () => {
      const { rows } = await tdb.db.query(
        `SELECT count(*)::int AS n FROM outbox WHERE payload->>'postId' = $1 AND dispatched_at IS NOT NULL`,
        [post.id],
      );
      return Number(rows[0]?.n) === 1;
    });
    await app.close();
    await new Promise((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now()) + 500));
    expect((await tdb.db.query('SELECT status::text AS s FROM posts WHERE id = $1', [post.id])).rows[0]?.s).toBe(
      'scheduled',
    );

    ({ app, container } = await createTestStack(tdb.db, menv.env, { log: logs.log }));
    await container.startWorkers();
    const published = await publishedSoon(post.id, 'the restarted workers to publish it', 30_000);
    expect(published.publishedAt).toBe(at.toISOString());
  });
});
