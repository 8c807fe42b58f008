import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createPost, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

// Writes racing each other: requests are sent together (Promise.all) and the outcome must be one
// of the serial ones, the same on PGlite (one connection) as on PostgreSQL (a pool).
describe.each(databaseKinds)('concurrent post writes on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let author: TestUser;
  let editor: TestUser;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
    t = await createTenant(app);
    author = await createMember(app, t, 'author');
    editor = await createMember(app, t, 'editor');
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const patch = (as: TestUser, id: string, payload: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'PATCH', url: `/api/v1/posts/${id}`, headers: { ...t.as(as), ...headers }, payload });
  const read = async (id: string) => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/posts/${id}`, headers: t.as(author) });
    return res.statusCode === 200 ? res.json().data : null;
  };
  const codes = (responses: Array<{ statusCode: number }>) => responses.map((r) => r.statusCode).sort();

  it('two PATCHes with the same version: exactly one 200 and one 409, no lost update', async () => {
    for (let round = 0; round < 5; round++) {
      const p = await createPost(app, t, author, { title: `Race ${round}` });
      const [a, b] = await Promise.all([
        patch(author, p.id, { title: 'From A', version: 1 }),
        patch(editor, p.id, { title: 'From B' }, { 'if-match': '"1"' }),
      ]);
      expect(codes([a!, b!])).toEqual([200, 409]);
      const [winner, loser] = a!.statusCode === 200 ? [a!, b!] : [b!, a!];
      expect(expectError(loser, 409, 'version_conflict').details).toEqual({ currentVersion: 2 });
      expect(winner.json().data.version).toBe(2);
      expect(await read(p.id)).toEqual(winner.json().data);
    }
  });

  it('six PATCHes with the same version: one wins, five get 409', async () => {
    const p = await createPost(app, t, author);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => patch(editor, p.id, { body: `writer ${i}`, version: 1 })),
    );
    expect(codes(results)).toEqual([200, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.statusCode === 409)) {
      expect(expectError(r, 409, 'version_conflict').details).toEqual({ currentVersion: 2 });
    }
    const winner = results.find((r) => r.statusCode === 200)!.json().data;
    expect(await read(p.id)).toMatchObject({ body: winner.body, version: 2 });
  });

  it('two DELETEs at once: one 204, the other 404', async () => {
    for (const headers of [{}, { 'if-match': '"1"' }]) {
      const p = await createPost(app, t, author);
      const del = () =>
        app.inject({ method: 'DELETE', url: `/api/v1/posts/${p.id}`, headers: { ...t.as(author), ...headers } });
      const results = await Promise.all([del(), del()]);
      expect(codes(results)).toEqual([204, 404]);
      expectError(results.find((r) => r.statusCode === 404)!, 404, 'not_found');
      expect(await read(p.id)).toBeNull();
    }
  });

  it('PATCH racing DELETE: one of them wins and the other reports why', async () => {
    for (let round = 0; round < 3; round++) {
      const p = await createPost(app, t, author);
      const [edit, gone] = await Promise.all([
        patch(author, p.id, { title: 'Edited', version: 1 }),
        app.inject({ method: 'DELETE', url: `/api/v1/posts/${p.id}`, headers: { ...t.as(author), 'if-match': '"1"' } }),
      ]);
      if (gone!.statusCode === 204) {
        expectError(edit!, 404, 'not_found');
        expect(await read(p.id)).toBeNull();
      } else {
        expect(edit!.statusCode).toBe(200);
        expect(expectError(gone!, 409, 'version_conflict').details).toEqual({ currentVersion: 2 });
        expect(await read(p.id)).toMatchObject({ title: 'Edited', version: 2 });
      }
    }
  });

  it('publishing at once without a version is idempotent: every call 200, one publication', async () => {
    const p = await createPost(app, t, author);
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        app.inject({ method: 'POST', url: `/api/v1/posts/${p.id}/publish`, headers: t.as(author) }),
      ),
    );
    expect(codes(results)).toEqual([200, 200, 200, 200]);
    const stored = await read(p.id);
    expect(stored).toMatchObject({ status: 'published', version: 2 });
    for (const r of results) expect(r.json().data).toEqual(stored);
  });

  it('creating posts with the same title at once gives each its own slug', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        app.inject({
          method: 'POST',
          url: '/api/v1/posts',
          headers: t.as(author),
          payload: { title: 'Same Title', body: 'b' },
        }),
      ),
    );
    for (const r of results) expect(r.statusCode, r.body).toBe(201);
    const slugs = results.map((r) => r.json().data.slug as string).sort();
    expect(slugs).toEqual(['same-title', 'same-title-2', 'same-title-3', 'same-title-4']);
  });

  it('the same explicit slug at once: one 201, the rest 409 slug_taken', async () => {
    const results = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        app.inject({
          method: 'POST',
          url: '/api/v1/posts',
          headers: t.as(author),
          payload: { title: `Claim ${i}`, body: 'b', slug: 'contested' },
        }),
      ),
    );
    expect(codes(results)).toEqual([201, 409, 409]);
    for (const r of results.filter((x) => x.statusCode === 409)) expectError(r, 409, 'slug_taken');
  });

  it('two posts moved to the same slug at once: one 200, one 409 slug_taken', async () => {
    const a = await createPost(app, t, author);
    const b = await createPost(app, t, author);
    const results = await Promise.all([
      patch(author, a.id, { slug: 'one-place', version: 1 }),
      patch(author, b.id, { slug: 'one-place', version: 1 }),
    ]);
    expect(codes(results)).toEqual([200, 409]);
    expectError(results.find((r) => r.statusCode === 409)!, 409, 'slug_taken');
    const [ra, rb] = [await read(a.id), await read(b.id)];
    expect([ra.slug, rb.slug].filter((s) => s === 'one-place')).toHaveLength(1);
    expect([ra.version, rb.version].sort()).toEqual([1, 2]);
  });
});
