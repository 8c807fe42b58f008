import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberRole } from '../../src/platform/db/schema.js';
import { createTestStack } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import {
  createMember,
  createPost,
  createTenant,
  type TestTenant,
  type TestUser,
  transitionPost,
} from '../helpers/factories.js';
import { type ModeEnv, modeEnv, queueModes, waitForJob } from '../helpers/jobs.js';

/** POST /exports → a job on the `export` queue → GET /jobs/:id for progress → GET /exports/:jobId. */
describe.each(queueModes)('content exports, $name', (mode) => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let a: TestTenant;
  let staff: Record<MemberRole, TestUser>;
  let b: TestTenant;
  /** Ids of the posts each tenant has, whatever their status. */
  const postsOf = new Map<string, string[]>();

  beforeAll(async () => {
    menv = await modeEnv(mode, 'exports');
    tdb = await mode.kind.create();
    let container: Awaited<ReturnType<typeof createTestStack>>['container'];
    ({ app, container } = await createTestStack(tdb.db, menv.env));
    await container.startWorkers();
    a = await createTenant(app);
    staff = { owner: a.owner } as Record<MemberRole, TestUser>;
    for (const role of ['admin', 'editor', 'author'] as const) staff[role] = await createMember(app, a, role);
    b = await createTenant(app);
    const draft = await createPost(app, a, staff.author, { title: 'A draft by the author' });
    const published = await createPost(app, a, a.owner, { title: 'A published post' });
    await transitionPost(app, a, a.owner, published.id, 'publish');
    const archived = await createPost(app, a, staff.editor, { title: 'An archived post' });
    await transitionPost(app, a, a.owner, archived.id, 'archive');
    postsOf.set(a.id, [draft.id, published.id, archived.id]);
    const other = [await createPost(app, b, b.owner), await createPost(app, b, b.owner)];
    postsOf.set(
      b.id,
      other.map((p) => p.id),
    );
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
  });

  const startExport = (headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: '/api/v1/exports', headers });
  const download = (jobId: string, headers: Record<string, string>) =>
    app.inject({ method: 'GET', url: `/api/v1/exports/${jobId}`, headers });

  /** Starts an export as `user` in `t` and waits for its job to complete. */
  async function exported(t: TestTenant, user: TestUser) {
    const res = await startExport(t.as(user));
    expect(res.statusCode, res.body).toBe(202);
    const { jobId } = res.json().data as { jobId: string };
    expect(res.headers.location).toBe(`/api/v1/jobs/${jobId}`);
    const job = await waitForJob(app, t.as(user), jobId, ['completed', 'failed']);
    return { jobId, job };
  }

  it("an owner exports the tenant's posts: 202 + Location, a job that completes at 100%, a JSON download", async () => {
    const { jobId, job } = await exported(a, a.owner);
    expect(job).toMatchObject({
      id: jobId,
      queue: 'export',
      name: 'posts',
      state: 'completed',
      tenantId: a.id,
      progress: 100,
      failedReason: null,
      result: { posts: 3 },
    });

    const file = await download(jobId, a.as(a.owner));
    expect(file.statusCode, file.body).toBe(200);
    expect(file.headers['content-type']).toMatch(/^application\/json/);
    expect(file.headers['content-disposition']).toBe(`attachment; filename="quire-export-${jobId}.json"`);
    expect(Number(file.headers['content-length'])).toBe(file.rawPayload.length);
    const body = file.json() as { exportedAt: string; posts: Array<{ id: string; tenantId: string; title: string }> };
    expect(new Date(body.exportedAt).toISOString()).toBe(body.exportedAt);
    expect(body.posts.map((p) => p.id).sort()).toEqual([...(postsOf.get(a.id) ?? [])].sort());
    expect(body.posts.every((p) => p.tenantId === a.id)).toBe(true);
    for (const id of postsOf.get(b.id) ?? []) expect(file.body).not.toContain(id);
    expect(body.posts.map((p) => p.title)).toContain('A draft by the author');
  });

  it("each tenant's export holds its own posts only; a tenant admin may export too", async () => {
    const theirs = await exported(b, b.owner);
    expect(theirs.job.result).toEqual({ posts: 2 });
    const theirFile = (await download(theirs.jobId, b.as(b.owner))).json() as { posts: Array<{ id: string }> };
    expect(theirFile.posts.map((p) => p.id).sort()).toEqual([...(postsOf.get(b.id) ?? [])].sort());

    const byAdmin = await exported(a, staff.admin);
    expect(byAdmin.job).toMatchObject({ state: 'completed', result: { posts: 3 } });
    expect((await download(byAdmin.jobId, a.as(staff.admin))).statusCode).toBe(200);
  });

  it("editors and authors may not export; another tenant's owner gets 404 for the job and the download", async () => {
    for (const role of ['editor', 'author'] as const) {
      expectError(await startExport(a.as(staff[role])), 403, 'forbidden');
    }
    const { jobId } = await exported(a, a.owner);
    for (const role of ['editor', 'author'] as const) {
      expectError(await download(jobId, a.as(staff[role])), 403, 'forbidden');
    }
    // In their own tenant the job and the file do not exist; in ours they are not a member.
    expectError(await app.inject({ method: 'GET', url: `/api/v1/jobs/${jobId}`, headers: b.as(b.owner) }), 404);
    expectError(await download(jobId, b.as(b.owner)), 404, 'not_found');
    expectError(await download(jobId, a.as(b.owner)), 404, 'not_found');
    expectError(await startExport(a.as(b.owner)), 404, 'not_found');
  });

  it('unknown or malformed export ids, and requests without a tenant or a token, are refused', async () => {
    expectError(await download(randomUUID(), a.as(a.owner)), 404, 'not_found');
    expectError(await download('not-a-uuid', a.as(a.owner)), 400, 'validation_failed');
    expectError(await startExport(a.owner.auth), 400, 'tenant_required');
    expectError(await startExport({}), 401, 'unauthorized');
    expectError(await download(randomUUID(), {}), 401, 'unauthorized');
  });
});
