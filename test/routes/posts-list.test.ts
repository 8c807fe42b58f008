import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import { createMember, createPost, createTenant, type TestTenant } from '../helpers/factories.js';

interface ListedPost {
  id: string;
  authorId: string;
  title: string;
  status: string;
  createdAt: string;
  publishedAt: string | null;
}

/** Descending by the given keys in turn (ISO timestamps and UUIDs compare as strings). */
const desc =
  (...keys: Array<(p: ListedPost) => string>) =>
  (a: ListedPost, b: ListedPost) => {
    for (const k of keys) {
      if (k(a) !== k(b)) return k(a) < k(b) ? 1 : -1;
    }
    return 0;
  };
const newestFirst = desc(
  (p) => p.createdAt,
  (p) => p.id,
);
const ids = (posts: ListedPost[]) => posts.map((p) => p.id);

// GET /posts: keyset pagination, filters and both sort orders.
describe.each(databaseKinds)('listing posts on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const list = (t: TestTenant, query = '') =>
    app.inject({ method: 'GET', url: `/api/v1/posts${query ? `?${query}` : ''}`, headers: t.as(t.owner) });

  /** Follows nextCursor (from `start`, if given) until it is null; returns the pages. */
  async function walk(t: TestTenant, query: string, start: string | null = null) {
    const pages: ListedPost[][] = [];
    let cursor = start;
    do {
      const res = await list(t, `${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['data', 'meta']);
      pages.push(body.data);
      cursor = body.meta.nextCursor;
      expect(pages.length).toBeLessThan(100);
    } while (cursor !== null);
    return pages;
  }

  const transition = (t: TestTenant, id: string, action: 'publish' | 'unpublish' | 'archive') =>
    app.inject({ method: 'POST', url: `/api/v1/posts/${id}/${action}`, headers: t.as(t.owner) });

  async function createMany(t: TestTenant, n: number) {
    const made = [];
    for (let i = 0; i < n; i++) made.push(await createPost(app, t, t.owner, { title: `Post ${i}` }));
    return made;
  }

  it('walks 25 posts 7 at a time: each exactly once, newest first, then a null cursor', async () => {
    const t = await createTenant(app);
    const made = await createMany(t, 25);
    const pages = await walk(t, 'limit=7');
    expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 4]);
    const all = pages.flat();
    expect(new Set(ids(all)).size).toBe(25);
    expect(new Set(ids(all))).toEqual(new Set(made.map((p) => p.id)));
    expect(all).toEqual([...all].sort(newestFirst));
    // The newest post leads and the oldest closes the walk.
    expect(all[0]!.id).toBe(made[24]!.id);
    expect(all[24]!.id).toBe(made[0]!.id);
  });

  it('a last page that is exactly full ends with a null cursor, not an empty page', async () => {
    const t = await createTenant(app);
    await createMany(t, 14);
    const pages = await walk(t, 'limit=7');
    expect(pages.map((p) => p.length)).toEqual([7, 7]);
  });

  it('an empty tenant lists nothing; the default page is 20', async () => {
    const t = await createTenant(app);
    const empty = await list(t);
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toEqual({ data: [], meta: { nextCursor: null } });
    await createMany(t, 21);
    const first = (await list(t)).json();
    expect(first.data).toHaveLength(20);
    expect(first.meta.nextCursor).toEqual(expect.any(String));
  });

  it('posts created while paging neither repeat nor shift the rest of the walk', async () => {
    const t = await createTenant(app);
    const made = await createMany(t, 10);
    const first = (await list(t, 'limit=4')).json();
    await createMany(t, 3);
    const rest = await walk(t, 'limit=4', first.meta.nextCursor);
    const seen = [...ids(first.data), ...ids(rest.flat())];
    expect(seen).toEqual(
      made
        .map((p) => p.id)
        .reverse()
        .filter((id) => seen.includes(id)),
    );
    expect(new Set(seen)).toEqual(new Set(made.map((p) => p.id)));
  });

  it('rejects a cursor this API did not return with 400 invalid_cursor', async () => {
    const t = await createTenant(app);
    await createMany(t, 3);
    const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const id = '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11';
    const bad = [
      'garbage',
      '!!!',
      b64('not json'),
      b64({}),
      b64(null),
      b64(42),
      b64([]),
      b64(['2024-01-01T00:00:00.000Z']),
      b64(['2024-01-01T00:00:00.000Z', 'not-a-uuid']),
      b64(['not a date', id]),
      b64([true, id]),
      b64(['2024-01-01T00:00:00.000Z', id, 'extra']).slice(0, -3),
    ];
    for (const cursor of bad) {
      const res = await list(t, `cursor=${encodeURIComponent(cursor)}`);
      expectError(res, 400, 'invalid_cursor');
    }
    const tooLong = await list(t, `cursor=${'a'.repeat(201)}`);
    expect(fieldsOf(expectError(tooLong, 400, 'validation_failed'))).toEqual(['querystring.cursor']);
  });

  it('a forged cursor with a date no post can have is 400 invalid_cursor, not a 500', async () => {
    const t = await createTenant(app);
    await createMany(t, 2);
    const id = 'ffffffff-ffff-4fff-bfff-ffffffffffff';
    const cursor = (v: string) => Buffer.from(JSON.stringify([v, id])).toString('base64url');
    // Valid JavaScript dates, but not timestamps PostgreSQL accepts as written.
    for (const date of ['+275760-09-13T00:00:00.000Z', '-271821-04-20T00:00:00.000Z', '+010000-01-01T00:00:00.000Z']) {
      for (const sort of ['created_at', 'published_at']) {
        expectError(await list(t, `sort=${sort}&cursor=${cursor(date)}`), 400, 'invalid_cursor');
      }
    }
    // A far but ordinary date is a fine position: everything is older than it.
    const late = await list(t, `cursor=${cursor('9999-12-31T23:59:59.999Z')}`);
    expect(late.statusCode, late.body).toBe(200);
    expect(late.json().data).toHaveLength(2);
  });

  it('limit must be an integer from 1 to 100', async () => {
    const t = await createTenant(app);
    await createMany(t, 2);
    for (const limit of ['0', '101', '-1', '1.5', 'abc', '']) {
      const err = expectError(await list(t, `limit=${limit}`), 400, 'validation_failed');
      expect(fieldsOf(err), limit).toEqual(['querystring.limit']);
    }
    const one = await list(t, 'limit=1');
    expect(one.json().data).toHaveLength(1);
    expect(one.json().meta.nextCursor).toEqual(expect.any(String));
    const hundred = await list(t, 'limit=100');
    expect(hundred.json().data).toHaveLength(2);
    expect(hundred.json().meta.nextCursor).toBeNull();
  });

  it('filters by status, also across pages', async () => {
    const t = await createTenant(app);
    const [p0, p1, p2, p3, p4] = await createMany(t, 6);
    for (const p of [p0!, p1!, p2!]) expect((await transition(t, p.id, 'publish')).statusCode).toBe(200);
    expect((await transition(t, p2!.id, 'archive')).statusCode).toBe(200);
    expect((await transition(t, p3!.id, 'archive')).statusCode).toBe(200);
    const everything = (await list(t, 'limit=100')).json().data as ListedPost[];
    const expected = { draft: [p4!.id], published: [p0!.id, p1!.id], archived: [p2!.id, p3!.id] };
    for (const [status, some] of Object.entries(expected)) {
      const walked = (await walk(t, `limit=1&status=${status}`)).flat();
      expect(walked.every((p) => p.status === status)).toBe(true);
      expect(ids(walked)).toEqual(ids(everything.filter((p) => p.status === status)));
      for (const id of some) expect(ids(walked)).toContain(id);
    }
    expect(ids((await walk(t, 'limit=2&status=draft')).flat())).toHaveLength(2);
    const err = expectError(await list(t, 'status=deleted'), 400, 'validation_failed');
    expect(fieldsOf(err)).toEqual(['querystring.status']);
  });

  it('filters by author, alone and with status, across pages', async () => {
    const t = await createTenant(app);
    const alice = await createMember(app, t, 'author');
    const bob = await createMember(app, t, 'author');
    const idle = await createMember(app, t, 'author');
    const byAlice = [];
    for (let i = 0; i < 5; i++) {
      byAlice.push(await createPost(app, t, alice, { title: `Alice ${i}` }));
      await createPost(app, t, bob, { title: `Bob ${i}` });
    }
    await app.inject({ method: 'POST', url: `/api/v1/posts/${byAlice[1]!.id}/publish`, headers: t.as(alice) });
    const walked = (await walk(t, `limit=2&author=${alice.id}`)).flat();
    expect(ids(walked)).toEqual(ids(byAlice as unknown as ListedPost[]).reverse());
    expect(walked.every((p) => p.authorId === alice.id)).toBe(true);
    const published = (await list(t, `author=${alice.id}&status=published`)).json().data;
    expect(ids(published)).toEqual([byAlice[1]!.id]);
    expect((await list(t, `author=${bob.id}&status=published`)).json().data).toEqual([]);
    expect((await list(t, `author=${idle.id}`)).json()).toEqual({ data: [], meta: { nextCursor: null } });
    const err = expectError(await list(t, 'author=alice'), 400, 'validation_failed');
    expect(fieldsOf(err)).toEqual(['querystring.author']);
  });

  it('sort=published_at puts published posts first by publication date, drafts last', async () => {
    const t = await createTenant(app);
    const [p0, p1, p2, p3, p4] = await createMany(t, 5);
    // Published out of creation order; p3 is published then archived and keeps its date.
    for (const p of [p3!, p1!, p4!]) expect((await transition(t, p.id, 'publish')).statusCode).toBe(200);
    expect((await transition(t, p3!.id, 'archive')).statusCode).toBe(200);
    const res = await list(t, 'sort=published_at&limit=100');
    expect(res.statusCode).toBe(200);
    const got = res.json().data as ListedPost[];
    const dated = got.filter((p) => p.publishedAt !== null);
    const drafts = got.filter((p) => p.publishedAt === null);
    expect(new Set(ids(dated))).toEqual(new Set([p1!.id, p3!.id, p4!.id]));
    expect(new Set(ids(drafts))).toEqual(new Set([p0!.id, p2!.id]));
    expect(got).toEqual([
      ...[...dated].sort(
        desc(
          (p) => p.publishedAt!,
          (p) => p.id,
        ),
      ),
      ...[...drafts].sort(desc((p) => p.id)),
    ]);
    // Published later comes first: p4 was published after p1.
    expect(ids(got).indexOf(p4!.id)).toBeLessThan(ids(got).indexOf(p1!.id));
    const err = expectError(await list(t, 'sort=title'), 400, 'validation_failed');
    expect(fieldsOf(err)).toEqual(['querystring.sort']);
  });

  it('paginates under sort=published_at across the published/draft boundary', async () => {
    const t = await createTenant(app);
    const made = await createMany(t, 12);
    for (const i of [5, 0, 9, 2, 11, 7, 3]) {
      expect((await transition(t, made[i]!.id, 'publish')).statusCode).toBe(200);
    }
    const whole = (await list(t, 'sort=published_at&limit=100')).json().data as ListedPost[];
    expect(whole).toHaveLength(12);
    for (const limit of [1, 2, 3, 5, 7]) {
      const pages = await walk(t, `sort=published_at&limit=${limit}`);
      expect(pages.map((p) => p.length)).toEqual(
        Array.from({ length: Math.ceil(12 / limit) }, (_, i) => Math.min(limit, 12 - i * limit)),
      );
      expect(ids(pages.flat()), `limit ${limit}`).toEqual(ids(whole));
    }
    // With a status filter too.
    const published = (await walk(t, 'sort=published_at&status=published&limit=2')).flat();
    expect(ids(published)).toEqual(ids(whole.filter((p) => p.status === 'published')));
    expect(published).toHaveLength(7);
  });

  it('viewers list; other tenants’ posts never appear', async () => {
    const t = await createTenant(app);
    const other = await createTenant(app);
    const viewer = await createMember(app, t, 'viewer');
    const mine = await createPost(app, t, t.owner);
    await createPost(app, other, other.owner);
    const res = await app.inject({ method: 'GET', url: '/api/v1/posts', headers: t.as(viewer) });
    expect(res.statusCode).toBe(200);
    expect(ids(res.json().data)).toEqual([mine.id]);
  });
});
