import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import { createMember, createPost, createTenant, createUser } from '../helpers/factories.js';

// POST /posts: defaults, slugs, validation, mass assignment, body limits and content types, roles.
describe.each(databaseKinds)('posts routes on $name', (kind) => {
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

  const create = (headers: Record<string, string>, payload: unknown) =>
    app.inject({ method: 'POST', url: '/api/v1/posts', headers, payload: payload as object });
  const get = (headers: Record<string, string>, idOrSlug: string) =>
    app.inject({ method: 'GET', url: `/api/v1/posts/${idOrSlug}`, headers });
  const list = (headers: Record<string, string>) =>
    app.inject({ method: 'GET', url: '/api/v1/posts?limit=100', headers });

  describe('POST /posts', () => {
    it('creates a draft by the caller in the caller tenant, with an ETag', async () => {
      const t = await createTenant(app);
      const author = await createMember(app, t, 'author');
      const res = await create(t.as(author), { title: '  Hello World  ', body: 'First post' });
      expect(res.statusCode).toBe(201);
      const post = res.json().data;
      expect(post).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        tenantId: t.id,
        type: 'post',
        authorId: author.id,
        title: 'Hello World',
        slug: 'hello-world',
        body: 'First post',
        html: '<p>First post</p>\n',
        readingTime: 1,
        // No custom excerpt: the one derived from the body.
        excerpt: 'First post',
        customExcerpt: null,
        featured: false,
        featureImage: null,
        featureImageAlt: null,
        featureImageCaption: null,
        metaTitle: null,
        metaDescription: null,
        canonicalUrl: null,
        ogImage: null,
        ogTitle: null,
        ogDescription: null,
        twitterImage: null,
        twitterTitle: null,
        twitterDescription: null,
        tags: [],
        // The creator is the only (so the primary) author by default.
        authors: [{ id: author.id, name: expect.any(String), slug: expect.any(String), profileImage: null }],
        status: 'draft',
        publishedAt: null,
        version: 1,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(new Date(post.createdAt).toISOString()).toBe(post.createdAt);
      expect(post.updatedAt).toBe(post.createdAt);
      expect(res.headers.etag).toBe('"1"');
      // It is stored: reading it back gives the same representation.
      const read = await get(t.as(author), post.id);
      expect(read.json().data).toEqual(post);
    });

    it('keeps an excerpt and an explicit slug', async () => {
      const t = await createTenant(app);
      const res = await create(t.as(t.owner), {
        title: 'Anything',
        body: 'b',
        excerpt: 'Short',
        slug: 'my-own-slug-2',
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().data).toMatchObject({ slug: 'my-own-slug-2', excerpt: 'Short', title: 'Anything' });
    });

    it('derives slugs from titles and numbers repeats', async () => {
      const t = await createTenant(app);
      const slugs: string[] = [];
      for (const title of ['Hello World', 'Hello World', 'hello   world!', 'Hello World']) {
        slugs.push((await createPost(app, t, t.owner, { title })).slug);
      }
      expect(slugs).toEqual(['hello-world', 'hello-world-2', 'hello-world-3', 'hello-world-4']);
      // Titles with nothing to slugify still get a usable, unique slug.
      const a = await createPost(app, t, t.owner, { title: '!!!' });
      const b = await createPost(app, t, t.owner, { title: '???' });
      expect([a.slug, b.slug]).toEqual(['post', 'post-2']);
    });

    it('derived slugs avoid explicit ones and stay short and well-formed', async () => {
      const t = await createTenant(app);
      await createPost(app, t, t.owner, { title: 'x', slug: 'launch' });
      expect((await createPost(app, t, t.owner, { title: 'Launch' })).slug).toBe('launch-2');
      // 80 characters of "word-word-…" would end in a hyphen: it is cut to a well-formed slug.
      const title = `${'Word '.repeat(50)}end`;
      const long = await createPost(app, t, t.owner, { title });
      expect(long.slug.length).toBeLessThanOrEqual(80);
      expect(long.slug).toMatch(/^[a-z0-9]+(?:-[a-z0-9]+)*$/);
      expect(long.slug.startsWith('word-word-')).toBe(true);
      expect((await createPost(app, t, t.owner, { title })).slug).toBe(`${long.slug}-2`);
    });

    it('an explicit duplicate slug is 409 slug_taken and creates nothing', async () => {
      const t = await createTenant(app);
      await createPost(app, t, t.owner, { title: 'First', slug: 'taken' });
      const res = await create(t.as(t.owner), { title: 'Second', body: 'b', slug: 'taken' });
      expectError(res, 409, 'slug_taken');
      // A slug some earlier post derived from its title is taken the same way.
      await createPost(app, t, t.owner, { title: 'Second Post' });
      const derivedClash = await create(t.as(t.owner), { title: 'Third', body: 'b', slug: 'second-post' });
      expectError(derivedClash, 409, 'slug_taken');
      const all = (await list(t.as(t.owner))).json().data;
      expect(all.map((p: { title: string }) => p.title).sort()).toEqual(['First', 'Second Post']);
    });

    it('the same slug is free in another tenant', async () => {
      const owner = await createUser(app);
      const t1 = await createTenant(app, owner);
      const t2 = await createTenant(app, owner);
      expect((await createPost(app, t1, owner, { title: 'Same', slug: 'same' })).slug).toBe('same');
      expect((await createPost(app, t2, owner, { title: 'Same', slug: 'same' })).slug).toBe('same');
      expect((await createPost(app, t2, owner, { title: 'Same' })).slug).toBe('same-2');
    });

    it.each([
      ['upper case', 'Hello'],
      ['double hyphen', 'a--b'],
      ['leading hyphen', '-a'],
      ['trailing hyphen', 'a-'],
      ['space', 'a b'],
      ['empty', ''],
      ['too long', 'a'.repeat(121)],
      ['path', '../etc'],
      ['unicode', 'caf\u00e9'],
    ])('rejects a slug with %s as 400 body.slug', async (_, slug) => {
      const t = await createTenant(app);
      const res = await create(t.as(t.owner), { title: 'T', body: 'b', slug });
      const err = expectError(res, 400, 'validation_failed');
      expect(new Set(fieldsOf(err))).toEqual(new Set(['body.slug']));
    });

    it('rejects invalid fields with per-field details and creates nothing', async () => {
      const t = await createTenant(app);
      const h = t.as(t.owner);
      const cases: Array<[unknown, string[]]> = [
        [{}, ['body.title', 'body.body']],
        [{ title: 'T' }, ['body.body']],
        [{ body: 'b' }, ['body.title']],
        [{ title: '   ', body: 'b' }, ['body.title']],
        [{ title: 'x'.repeat(301), body: 'b' }, ['body.title']],
        [{ title: 42, body: 'b' }, ['body.title']],
        [{ title: 'T', body: ['b'] }, ['body.body']],
        [{ title: 'T', body: 'b', excerpt: 'e'.repeat(1001) }, ['body.excerpt']],
        [{ title: 'T', body: 'b', excerpt: 5 }, ['body.excerpt']],
        [[{ title: 'T', body: 'b' }], ['body']],
      ];
      for (const [payload, fields] of cases) {
        const res = await create(h, payload);
        const err = expectError(res, 400, 'validation_failed');
        expect(new Set(fieldsOf(err)), JSON.stringify(payload)).toEqual(new Set(fields));
        for (const d of err.details as Array<{ message: unknown; code: unknown }>) {
          expect(d.message).toEqual(expect.any(String));
        }
      }
      expect((await list(h)).json().data).toEqual([]);
    });

    it('ignores tenantId, authorId, status, version and timestamps sent by the client', async () => {
      const owner = await createUser(app);
      const t = await createTenant(app, owner);
      const elsewhere = await createTenant(app, owner);
      const author = await createMember(app, t, 'author');
      const someoneElse = await createMember(app, t, 'editor');
      const forgedId = '3b241101-e2bb-4255-8caf-4136c566a962';
      const res = await create(t.as(author), {
        title: 'Sneaky',
        body: 'b',
        id: forgedId,
        tenantId: elsewhere.id,
        authorId: someoneElse.id,
        status: 'published',
        publishedAt: '2001-01-01T00:00:00.000Z',
        version: 42,
        createdAt: '2001-01-01T00:00:00.000Z',
      });
      // The create body is not strict: unknown fields are dropped, not stored and not an error.
      expect(res.statusCode, res.body).toBe(201);
      const post = res.json().data;
      expect(post).toMatchObject({
        tenantId: t.id,
        authorId: author.id,
        status: 'draft',
        publishedAt: null,
        version: 1,
      });
      expect(post.id).not.toBe(forgedId);
      expect(post.createdAt).not.toBe('2001-01-01T00:00:00.000Z');
      // What is stored agrees, and nothing landed in the other tenant.
      expect((await get(t.as(author), post.id)).json().data).toMatchObject({
        tenantId: t.id,
        authorId: author.id,
        status: 'draft',
        version: 1,
      });
      expect((await list(elsewhere.as(owner))).json().data).toEqual([]);
      expectError(await get(elsewhere.as(owner), post.id), 404, 'not_found');
      expectError(await get(t.as(author), forgedId), 404, 'not_found');
    });

    it('answers a body over BODY_LIMIT_BYTES with 413 and creates nothing', async () => {
      const small = await createTestApp(tdb.db, { BODY_LIMIT_BYTES: '2048' });
      try {
        const t = await createTenant(small);
        const big = await small.inject({
          method: 'POST',
          url: '/api/v1/posts',
          headers: t.as(t.owner),
          payload: { title: 'Big', body: 'x'.repeat(4096) },
        });
        expectError(big, 413, 'payload_too_large');
        // The limit is the configured one: a body under it goes through.
        const fits = await small.inject({
          method: 'POST',
          url: '/api/v1/posts',
          headers: t.as(t.owner),
          payload: { title: 'Fits', body: 'x'.repeat(1500) },
        });
        expect(fits.statusCode).toBe(201);
        const all = await small.inject({ method: 'GET', url: '/api/v1/posts', headers: t.as(t.owner) });
        expect(all.json().data.map((p: { title: string }) => p.title)).toEqual(['Fits']);
      } finally {
        await small.close();
      }
    });

    it.each([
      ['text/plain', 'title=T'],
      ['application/x-www-form-urlencoded', 'title=T&body=b'],
      ['multipart/form-data; boundary=x', '--x--'],
      ['application/xml', '<post/>'],
    ])('answers Content-Type %s with 415', async (contentType, payload) => {
      const t = await createTenant(app);
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/posts',
        headers: { ...t.as(t.owner), 'content-type': contentType },
        payload,
      });
      expectError(res, 415, 'unsupported_media_type');
      expect((await list(t.as(t.owner))).json().data).toEqual([]);
    });

    it.each([
      ['malformed JSON', '{"title": "T", "body": '],
      ['a JSON string', '"just a string"'],
      ['an empty body', ''],
    ])('answers %s with 400', async (_, payload) => {
      const t = await createTenant(app);
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/posts',
        headers: { ...t.as(t.owner), 'content-type': 'application/json' },
        payload,
      });
      expectError(res, 400, /^(invalid_json|validation_failed)$/);
    });

    it('viewers cannot create; every other role can', async () => {
      const t = await createTenant(app);
      const viewer = await createMember(app, t, 'viewer');
      expectError(await create(t.as(viewer), { title: 'No', body: 'b' }), 403, 'forbidden');
      for (const role of ['admin', 'editor', 'author'] as const) {
        const m = await createMember(app, t, role);
        const res = await create(t.as(m), { title: role, body: 'b' });
        expect(res.statusCode, role).toBe(201);
        expect(res.json().data.authorId).toBe(m.id);
      }
      const titles = (await list(t.as(viewer))).json().data.map((p: { title: string }) => p.title);
      expect(titles.sort()).toEqual(['admin', 'author', 'editor']);
    });
  });
});
