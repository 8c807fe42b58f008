import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import { createMember, createPost, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

// PATCH, publish / unpublish / archive and DELETE: optimistic concurrency and who may do what.
describe.each(databaseKinds)('writing posts on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let author: TestUser;
  let otherAuthor: TestUser;
  let editor: TestUser;
  let admin: TestUser;
  let viewer: TestUser;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
    t = await createTenant(app);
    author = await createMember(app, t, 'author');
    otherAuthor = await createMember(app, t, 'author');
    editor = await createMember(app, t, 'editor');
    admin = await createMember(app, t, 'admin');
    viewer = await createMember(app, t, 'viewer');
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const patch = (as: TestUser, id: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${id}`,
      headers: { ...t.as(as), ...headers },
      payload: payload as object,
    });
  const act = (as: TestUser, id: string, action: string, payload?: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: `/api/v1/posts/${id}/${action}`,
      headers: { ...t.as(as), ...headers },
      ...(payload !== undefined && { payload: payload as object }),
    });
  const del = (as: TestUser, id: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'DELETE', url: `/api/v1/posts/${id}`, headers: { ...t.as(as), ...headers } });
  const read = async (id: string) => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/posts/${id}`, headers: t.as(t.owner) });
    return res.statusCode === 200 ? res.json().data : null;
  };

  describe('PATCH /posts/:id', () => {
    it('applies the change with the version in the body, bumps version and ETag', async () => {
      const p = await createPost(app, t, author, { title: 'Before', body: 'Old body', excerpt: 'Old' });
      const before = await read(p.id);
      const res = await patch(author, p.id, { title: 'After', excerpt: null, version: 1 });
      expect(res.statusCode, res.body).toBe(200);
      const after = res.json().data;
      expect(after).toEqual({
        ...before,
        title: 'After',
        // The custom excerpt cleared: the excerpt is derived from the body again.
        customExcerpt: null,
        excerpt: 'Old body',
        version: 2,
        updatedAt: expect.any(String),
      });
      expect(after.updatedAt >= before.updatedAt).toBe(true);
      expect(after.slug).toBe('before'); // a new title does not move the slug
      expect(res.headers.etag).toBe('"2"');
      expect(await read(p.id)).toEqual(after);
    });

    it('takes the version from If-Match; the body version wins when both are sent', async () => {
      const p = await createPost(app, t, author);
      const viaHeader = await patch(author, p.id, { body: 'via header' }, { 'if-match': '"1"' });
      expect(viaHeader.statusCode, viaHeader.body).toBe(200);
      expect(viaHeader.json().data).toMatchObject({ body: 'via header', version: 2 });
      expect(viaHeader.headers.etag).toBe('"2"');
      const both = await patch(author, p.id, { body: 'both', version: 2 }, { 'if-match': '"1"' });
      expect(both.statusCode).toBe(200);
      expect(both.json().data.version).toBe(3);
    });

    it('400 version_required without a version, and nothing changes', async () => {
      const p = await createPost(app, t, author, { title: 'Unversioned' });
      expectError(await patch(author, p.id, { title: 'Changed' }), 400, 'version_required');
      expect(await read(p.id)).toMatchObject({ title: 'Unversioned', version: 1 });
    });

    it('409 version_conflict with the current version for a stale one, and nothing changes', async () => {
      const p = await createPost(app, t, author, { title: 'Original' });
      expect((await patch(author, p.id, { title: 'Second', version: 1 })).statusCode).toBe(200);
      for (const [payload, headers] of [
        [{ title: 'Stale body', version: 1 }, {}],
        [{ title: 'Stale header' }, { 'if-match': '"1"' }],
        [{ title: 'Future', version: 99 }, {}],
      ] as const) {
        const err = expectError(await patch(author, p.id, payload, headers), 409, 'version_conflict');
        expect(err.details).toEqual({ currentVersion: 2 });
      }
      expect(await read(p.id)).toMatchObject({ title: 'Second', version: 2 });
    });

    it('rejects malformed versions and If-Match values with 400', async () => {
      const p = await createPost(app, t, author, { title: 'Strict' });
      for (const version of [0, -1, 1.5, '1', null]) {
        const err = expectError(await patch(author, p.id, { title: 'x', version }), 400, 'validation_failed');
        expect(fieldsOf(err)).toEqual(['body.version']);
      }
      for (const ifMatch of ['1', 'W/"1"', '*', '"a"', '"1", "2"']) {
        const err = expectError(await patch(author, p.id, { title: 'x' }, { 'if-match': ifMatch }), 400);
        expect(fieldsOf(err)).toEqual(['headers.if-match']);
      }
      expect(await read(p.id)).toMatchObject({ title: 'Strict', version: 1 });
    });

    it('refuses fields it does not own (status, tenantId, authorId, …) and invalid values', async () => {
      const p = await createPost(app, t, author, { title: 'Guarded' });
      const cases: Array<[Record<string, unknown>, string[]]> = [
        [{ status: 'published' }, ['body']],
        [{ tenantId: t.id }, ['body']],
        [{ authorId: editor.id }, ['body']],
        [{ publishedAt: '2001-01-01T00:00:00.000Z' }, ['body']],
        [{ id: '3b241101-e2bb-4255-8caf-4136c566a962' }, ['body']],
        [{ title: '  ' }, ['body.title']],
        [{ title: 'x'.repeat(301) }, ['body.title']],
        [{ slug: 'Bad Slug' }, ['body.slug']],
        [{ body: 42 }, ['body.body']],
      ];
      for (const [extra, fields] of cases) {
        const err = expectError(await patch(author, p.id, { ...extra, version: 1 }), 400, 'validation_failed');
        expect(new Set(fieldsOf(err)), JSON.stringify(extra)).toEqual(new Set(fields));
      }
      expect(await read(p.id)).toMatchObject({
        title: 'Guarded',
        status: 'draft',
        authorId: author.id,
        version: 1,
        publishedAt: null,
      });
    });

    it('changes the slug; a taken one is 409 slug_taken and nothing changes', async () => {
      const p = await createPost(app, t, author, { title: 'Movable' });
      const other = await createPost(app, t, author, { title: 'Occupied' });
      const moved = await patch(author, p.id, { slug: 'moved-here', version: 1 });
      expect(moved.statusCode).toBe(200);
      expect(moved.json().data.slug).toBe('moved-here');
      const found = await app.inject({ method: 'GET', url: '/api/v1/posts/moved-here', headers: t.as(viewer) });
      expect(found.json().data.id).toBe(p.id);
      const old = await app.inject({ method: 'GET', url: '/api/v1/posts/movable', headers: t.as(viewer) });
      expectError(old, 404, 'not_found');
      expectError(await patch(author, p.id, { slug: other.slug, title: 'Also', version: 2 }), 409, 'slug_taken');
      expect(await read(p.id)).toMatchObject({ slug: 'moved-here', title: 'Movable', version: 2 });
      // Keeping one's own slug is no collision.
      expect((await patch(author, p.id, { slug: 'moved-here', version: 2 })).statusCode).toBe(200);
    });

    it('404 for an unknown post, 400 for an id that is not a UUID', async () => {
      expectError(await patch(author, '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11', { version: 1 }), 404, 'not_found');
      const err = expectError(await patch(author, 'not-a-uuid', { version: 1 }), 400, 'validation_failed');
      expect(fieldsOf(err)).toEqual(['params.id']);
    });

    it('authors edit their own posts only; editors and admins edit any; viewers none', async () => {
      const p = await createPost(app, t, author, { title: 'Owned' });
      const err = expectError(await patch(otherAuthor, p.id, { title: 'Hijack', version: 1 }), 403, 'forbidden');
      expect(err.details).toBeUndefined();
      // Forbidden wins over a stale version: nothing about the post leaks.
      expectError(await patch(otherAuthor, p.id, { title: 'Hijack', version: 9 }), 403, 'forbidden');
      expectError(await patch(viewer, p.id, { title: 'Peek', version: 1 }), 403, 'forbidden');
      expect(await read(p.id)).toMatchObject({ title: 'Owned', version: 1 });
      let version = 1;
      for (const who of [author, editor, admin, t.owner]) {
        const res = await patch(who, p.id, { title: `By ${who.name}`, version });
        expect(res.statusCode, who.name).toBe(200);
        version = res.json().data.version;
      }
      expect(await read(p.id)).toMatchObject({ title: `By ${t.owner.name}`, version: 5, authorId: author.id });
    });
  });

  describe('publish, unpublish, archive', () => {
    it('publish sets publishedAt once; repeating it changes nothing', async () => {
      const p = await createPost(app, t, author);
      const res = await act(author, p.id, 'publish');
      expect(res.statusCode, res.body).toBe(200);
      const published = res.json().data;
      expect(published).toMatchObject({ status: 'published', version: 2 });
      expect(published.publishedAt).toEqual(expect.any(String));
      expect(published.publishedAt >= published.createdAt).toBe(true);
      expect(res.headers.etag).toBe('"2"');
      const again = await act(author, p.id, 'publish');
      expect(again.statusCode).toBe(200);
      expect(again.json().data).toEqual(published);
      expect(again.headers.etag).toBe('"2"');
      expect(await read(p.id)).toEqual(published);
    });

    it('unpublish goes back to draft without a date; publishing again dates it anew', async () => {
      const p = await createPost(app, t, author);
      const first = (await act(author, p.id, 'publish')).json().data;
      const draft = await act(author, p.id, 'unpublish');
      expect(draft.statusCode).toBe(200);
      expect(draft.json().data).toMatchObject({ status: 'draft', publishedAt: null, version: 3 });
      const stillDraft = await act(author, p.id, 'unpublish');
      expect(stillDraft.json().data).toMatchObject({ status: 'draft', version: 3 });
      const second = (await act(author, p.id, 'publish')).json().data;
      expect(second).toMatchObject({ status: 'published', version: 4 });
      expect(second.publishedAt).toEqual(expect.any(String));
      expect(second.publishedAt >= first.publishedAt).toBe(true);
    });

    it('archive keeps the publication date, and republishing from archive keeps it too', async () => {
      const p = await createPost(app, t, author);
      const published = (await act(author, p.id, 'publish')).json().data;
      const archived = await act(author, p.id, 'archive');
      expect(archived.statusCode).toBe(200);
      expect(archived.json().data).toMatchObject({
        status: 'archived',
        publishedAt: published.publishedAt,
        version: 3,
      });
      const back = await act(author, p.id, 'publish');
      expect(back.json().data).toMatchObject({ status: 'published', publishedAt: published.publishedAt, version: 4 });
      // A draft archived directly was never published.
      const d = await createPost(app, t, author);
      expect((await act(author, d.id, 'archive')).json().data).toMatchObject({ status: 'archived', publishedAt: null });
      const fromArchive = (await act(author, d.id, 'unpublish')).json().data;
      expect(fromArchive).toMatchObject({ status: 'draft', publishedAt: null });
    });

    it('takes a version in the body or If-Match; a stale one is 409 and nothing changes', async () => {
      const p = await createPost(app, t, author);
      expect((await act(author, p.id, 'publish', { version: 1 })).statusCode).toBe(200);
      expect((await act(author, p.id, 'archive', undefined, { 'if-match': '"2"' })).statusCode).toBe(200);
      expect((await act(author, p.id, 'publish', {})).statusCode).toBe(200);
      for (const action of ['publish', 'unpublish', 'archive']) {
        const viaBody = expectError(await act(author, p.id, action, { version: 2 }), 409, 'version_conflict');
        expect(viaBody.details).toEqual({ currentVersion: 4 });
        const viaHeader = await act(author, p.id, action, undefined, { 'if-match': '"3"' });
        expect(expectError(viaHeader, 409, 'version_conflict').details).toEqual({ currentVersion: 4 });
      }
      expect(await read(p.id)).toMatchObject({ status: 'published', version: 4 });
    });

    it('400 for an unknown body field or bad If-Match; 404 unknown post; 400 bad id', async () => {
      const p = await createPost(app, t, author);
      const extra = expectError(await act(author, p.id, 'publish', { status: 'published' }), 400, 'validation_failed');
      expect(fieldsOf(extra)).toEqual(['body']);
      const badHeader = expectError(await act(author, p.id, 'publish', undefined, { 'if-match': '2' }), 400);
      expect(fieldsOf(badHeader)).toEqual(['headers.if-match']);
      expect(await read(p.id)).toMatchObject({ status: 'draft', version: 1 });
      for (const action of ['publish', 'unpublish', 'archive']) {
        expectError(await act(author, '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11', action), 404, 'not_found');
        expect(fieldsOf(expectError(await act(author, 'nope', action), 400))).toEqual(['params.id']);
      }
    });

    it('authors publish their own posts only; viewers none; editors and admins any', async () => {
      const p = await createPost(app, t, author);
      for (const action of ['publish', 'unpublish', 'archive']) {
        expectError(await act(otherAuthor, p.id, action), 403, 'forbidden');
        expectError(await act(viewer, p.id, action), 403, 'forbidden');
      }
      expect(await read(p.id)).toMatchObject({ status: 'draft', version: 1, publishedAt: null });
      expect((await act(editor, p.id, 'publish')).json().data.status).toBe('published');
      expect((await act(admin, p.id, 'archive')).json().data.status).toBe('archived');
      expect((await act(t.owner, p.id, 'unpublish')).json().data.status).toBe('draft');
      const own = await createPost(app, t, otherAuthor);
      expect((await act(otherAuthor, own.id, 'publish')).json().data.status).toBe('published');
    });
  });

  describe('DELETE /posts/:id', () => {
    it('204 with no body; the post is then gone', async () => {
      const p = await createPost(app, t, author);
      const res = await del(author, p.id);
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expect(await read(p.id)).toBeNull();
      expectError(await del(author, p.id), 404, 'not_found');
      expectError(await patch(author, p.id, { title: 'Ghost', version: 1 }), 404, 'not_found');
      expectError(await act(author, p.id, 'publish'), 404, 'not_found');
    });

    it('honours If-Match: current deletes, stale is 409 and keeps the post', async () => {
      const p = await createPost(app, t, author);
      await act(author, p.id, 'publish');
      const err = expectError(await del(author, p.id, { 'if-match': '"1"' }), 409, 'version_conflict');
      expect(err.details).toEqual({ currentVersion: 2 });
      expect(await read(p.id)).toMatchObject({ version: 2 });
      expect(fieldsOf(expectError(await del(author, p.id, { 'if-match': 'two' }), 400))).toEqual(['headers.if-match']);
      expect((await del(author, p.id, { 'if-match': '"2"' })).statusCode).toBe(204);
      expect(await read(p.id)).toBeNull();
    });

    it('authors delete their own posts only; viewers none; editors and admins any', async () => {
      const p = await createPost(app, t, author);
      expectError(await del(otherAuthor, p.id), 403, 'forbidden');
      expectError(await del(viewer, p.id), 403, 'forbidden');
      expect(await read(p.id)).not.toBeNull();
      expect((await del(editor, p.id)).statusCode).toBe(204);
      const q = await createPost(app, t, author);
      expect((await del(admin, q.id)).statusCode).toBe(204);
      const mine = await createPost(app, t, otherAuthor);
      expect((await del(otherAuthor, mine.id)).statusCode).toBe(204);
      expectError(await del(author, '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11'), 404, 'not_found');
      expect(fieldsOf(expectError(await del(author, 'nope'), 400))).toEqual(['params.id']);
    });

    it('a deleted slug can be used again', async () => {
      const p = await createPost(app, t, author, { title: 'Reusable' });
      expect((await del(author, p.id)).statusCode).toBe(204);
      expect((await createPost(app, t, author, { title: 'Reusable' })).slug).toBe('reusable');
    });
  });
});
