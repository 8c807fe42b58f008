import { createSigner } from 'fast-jwt';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, TEST_JWT_SECRET } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import { createMember, createPost, createTenant, createUser, type TestUser } from '../helpers/factories.js';

// Who may reach the posts routes at all (token, tenant), and reading one post by id or slug.
describe.each(databaseKinds)('posts access and reads on $name', (kind) => {
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

  const get = (headers: Record<string, string>, idOrSlug: string) =>
    app.inject({ method: 'GET', url: `/api/v1/posts/${idOrSlug}`, headers });

  describe('authentication and tenant on every posts route', () => {
    let owner: TestUser;
    let tenantId: string;
    let postId: string;
    const routes = () => [
      { method: 'POST' as const, url: '/api/v1/posts', payload: { title: 'T', body: 'b' } },
      { method: 'GET' as const, url: '/api/v1/posts' },
      { method: 'GET' as const, url: `/api/v1/posts/${postId}` },
      { method: 'GET' as const, url: '/api/v1/posts/some-slug' },
      { method: 'PATCH' as const, url: `/api/v1/posts/${postId}`, payload: { title: 'New', version: 1 } },
      { method: 'POST' as const, url: `/api/v1/posts/${postId}/publish` },
      { method: 'POST' as const, url: `/api/v1/posts/${postId}/unpublish` },
      { method: 'POST' as const, url: `/api/v1/posts/${postId}/archive` },
      { method: 'DELETE' as const, url: `/api/v1/posts/${postId}` },
    ];
    const send = (r: ReturnType<typeof routes>[number], headers: Record<string, string>) =>
      app.inject({ method: r.method, url: r.url, headers, ...(r.payload && { payload: r.payload }) });

    beforeAll(async () => {
      owner = await createUser(app);
      const t = await createTenant(app, owner);
      tenantId = t.id;
      postId = (await createPost(app, t, owner, { title: 'Guarded' })).id;
    });

    const unchanged = async () => {
      const res = await get({ ...owner.auth, 'x-tenant-id': tenantId }, postId);
      expect(res.json().data).toMatchObject({ title: 'Guarded', status: 'draft', version: 1 });
    };

    it('401 without a token or with a bad one', async () => {
      const signer = (key: string, over: Record<string, unknown> = {}) =>
        createSigner({ key, algorithm: 'HS256', iss: 'quire', aud: 'quire-api', ...over });
      const now = Math.floor(Date.now() / 1000);
      const badTokens: Array<string | undefined> = [
        undefined,
        'Bearer',
        'Bearer not-a-jwt',
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `Bearer ${owner.accessToken}x`,
        `Bearer ${signer('another-secret-another-secret-0123456789')({ sub: owner.id })}`,
        `Bearer ${signer(TEST_JWT_SECRET)({ sub: owner.id, exp: now - 60, iat: now - 120 })}`,
        `Bearer ${signer(TEST_JWT_SECRET, { aud: 'someone-else' })({ sub: owner.id })}`,
        `Bearer ${signer(TEST_JWT_SECRET, { iss: 'someone-else' })({ sub: owner.id })}`,
      ];
      for (const r of routes()) {
        for (const authorization of badTokens) {
          const headers: Record<string, string> = { 'x-tenant-id': tenantId };
          if (authorization) headers.authorization = authorization;
          const res = await send(r, headers);
          expectError(res, 401, /^(unauthorized|invalid_token)$/);
          expect(res.headers['www-authenticate']).toBe('Bearer');
        }
      }
      await unchanged();
    });

    it('400 tenant_required without X-Tenant-ID (and no tenant in the token)', async () => {
      for (const r of routes()) {
        const res = await send(r, owner.auth);
        expectError(res, 400, 'tenant_required');
      }
      await unchanged();
    });

    it('400 for an X-Tenant-ID that is not a UUID', async () => {
      for (const r of routes()) {
        for (const bad of ['acme', '123', `${tenantId}x`, `{${tenantId}}`, "' or 1=1 --"]) {
          const res = await send(r, { ...owner.auth, 'x-tenant-id': bad });
          const err = expectError(res, 400);
          expect(err.code).toMatch(/^(validation_failed|invalid_tenant_id)$/);
          if (err.code === 'validation_failed') expect(fieldsOf(err)).toContain('headers.x-tenant-id');
        }
      }
      await unchanged();
    });

    it('404 for a tenant the caller is not a member of, the same as for no tenant at all', async () => {
      const stranger = await createUser(app);
      const strangersOwn = await createTenant(app, stranger);
      const missing = '00000000-0000-4000-8000-000000000000';
      for (const r of routes()) {
        const notMember = await send(r, { ...stranger.auth, 'x-tenant-id': tenantId });
        const noSuch = await send(r, { ...stranger.auth, 'x-tenant-id': missing });
        const a = expectError(notMember, 404, 'not_found');
        const b = expectError(noSuch, 404, 'not_found');
        expect(a.message).toBe(b.message);
      }
      // The stranger's own tenant does not see the post either.
      expectError(await get(strangersOwn.as(stranger), postId), 404, 'not_found');
      await unchanged();
    });

    it('404 with the documented shape for an unknown route or method', async () => {
      const h = { ...owner.auth, 'x-tenant-id': tenantId };
      expectError(await app.inject({ method: 'GET', url: '/api/v1/postz', headers: h }), 404, 'route_not_found');
      expectError(
        await app.inject({ method: 'PUT', url: `/api/v1/posts/${postId}`, headers: h, payload: {} }),
        404,
        'route_not_found',
      );
      expectError(
        await app.inject({ method: 'POST', url: `/api/v1/posts/${postId}/destroy`, headers: h }),
        404,
        'route_not_found',
      );
    });

    it('echoes a well-formed x-request-id in the header and the error', async () => {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/posts',
        headers: { ...owner.auth, 'x-request-id': 'trace-123.abc' },
      });
      const err = expectError(res, 400, 'tenant_required');
      expect(err.requestId).toBe('trace-123.abc');
      const replaced = await app.inject({
        method: 'GET',
        url: '/api/v1/posts',
        headers: { ...owner.auth, 'x-request-id': 'bad id with spaces' },
      });
      expect(expectError(replaced, 400).requestId).not.toBe('bad id with spaces');
    });
  });

  describe('GET /posts/:idOrSlug', () => {
    it('finds a post by id and by slug, with its version as ETag', async () => {
      const t = await createTenant(app);
      const viewer = await createMember(app, t, 'viewer');
      const p = await createPost(app, t, t.owner, { title: 'Findable', excerpt: 'E' });
      const byId = await get(t.as(viewer), p.id);
      const bySlug = await get(t.as(viewer), p.slug);
      expect(byId.statusCode).toBe(200);
      expect(bySlug.statusCode).toBe(200);
      expect(byId.json().data).toMatchObject({ id: p.id, slug: 'findable', title: 'Findable', excerpt: 'E' });
      expect(bySlug.json()).toEqual(byId.json());
      expect(byId.headers.etag).toBe('"1"');
      expect(bySlug.headers.etag).toBe('"1"');
      // An id in upper case is the same id.
      expect((await get(t.as(viewer), p.id.toUpperCase())).json().data.id).toBe(p.id);
    });

    it('404 for an unknown id or slug, and for a post of another tenant', async () => {
      const owner = await createUser(app);
      const t1 = await createTenant(app, owner);
      const t2 = await createTenant(app, owner);
      const p = await createPost(app, t2, owner, { title: 'Over there' });
      expectError(await get(t1.as(owner), '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11'), 404, 'not_found');
      expectError(await get(t1.as(owner), 'no-such-post'), 404, 'not_found');
      expectError(await get(t1.as(owner), p.id), 404, 'not_found');
      expectError(await get(t1.as(owner), p.slug), 404, 'not_found');
    });

    it('a post whose slug looks like an id is still found by that slug', async () => {
      const t = await createTenant(app);
      // Not an RFC 4122 UUID (version 1, variant 0) yet a valid slug: lower-case hex and hyphens.
      const slug = '12345678-1234-1234-1234-123456789abc';
      const p = await createPost(app, t, t.owner, { title: 'Odd slug', slug });
      const res = await get(t.as(t.owner), slug);
      expect(res.statusCode).toBe(200);
      expect(res.json().data.id).toBe(p.id);
    });

    it.each([
      '..%2Fetc',
      '..%2F..%2Fetc%2Fpasswd',
      '%2E%2E',
      'Hello-World',
      'a%20b',
      "x'%3B%20drop%20table%20posts%3B--",
      '%00',
      '%E2%80%AE',
      'a'.repeat(121),
      'a'.repeat(250),
      '%',
      '..',
      '../etc',
    ])('never answers %s with anything but 400 or 404', async (garbage) => {
      const t = await createTenant(app);
      await createPost(app, t, t.owner, { title: 'etc' });
      const res = await get(t.as(t.owner), garbage);
      expect([400, 404], res.body).toContain(res.statusCode);
      expectError(res, res.statusCode);
    });
  });
});
