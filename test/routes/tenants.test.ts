import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberRole } from '../../src/platform/db/schema.js';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import {
  createMember,
  createPost,
  createTenant,
  createUser,
  type TestTenant,
  type TestUser,
  transitionPost,
} from '../helpers/factories.js';

describe.each(databaseKinds)('tenant routes on $name', (kind) => {
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

  const call = (method: 'GET' | 'POST' | 'PUT', url: string, user?: TestUser, payload?: object) =>
    app.inject({ method, url: `/api/v1${url}`, headers: user?.auth ?? {}, ...(payload && { payload }) });

  /** A tenant with one member of every role besides its owner. */
  async function staffedTenant() {
    const t = await createTenant(app);
    const staff = { owner: t.owner } as Record<MemberRole, TestUser>;
    for (const role of ['admin', 'editor', 'author', 'viewer'] as const) staff[role] = await createMember(app, t, role);
    return { t, staff };
  }

  describe('POST /tenants', () => {
    it('creates the tenant and makes the caller its owner', async () => {
      const u = await createUser(app);
      const res = await call('POST', '/tenants', u, { name: '  Acme Blog ', slug: 'acme-blog' });
      expect(res.statusCode).toBe(201);
      const t = res.json().data;
      expect(t).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name: 'Acme Blog',
        slug: 'acme-blog',
        settings: {},
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const me = await call('GET', '/auth/me', u);
      expect(me.json().data.memberships).toEqual([
        { tenantId: t.id, name: 'Acme Blog', slug: 'acme-blog', role: 'owner' },
      ]);
      const one = await call('GET', `/tenants/${t.id}`, u);
      expect(one.json().data).toMatchObject({ id: t.id, role: 'owner' });
    });

    it('answers a taken slug with 409 slug_taken, whoever asks', async () => {
      const t = await createTenant(app);
      const other = await createUser(app);
      expectError(await call('POST', '/tenants', other, { name: 'Copy', slug: t.slug }), 409, 'slug_taken');
      expectError(await call('POST', '/tenants', t.owner, { name: 'Copy', slug: t.slug }), 409, 'slug_taken');
      expect((await call('GET', '/tenants', other)).json().data).toEqual([]);
    });

    it.each([
      ['upper case', 'Acme'],
      ['a leading hyphen', '-acme'],
      ['a trailing hyphen', 'acme-'],
      ['a space', 'ac me'],
      ['an underscore', 'ac_me'],
      ['one character', 'a'],
      ['64 characters', 'a'.repeat(64)],
      ['the reserved www', 'www'],
      ['the reserved api', 'api'],
      ['the reserved admin', 'admin'],
    ])('rejects a slug with %s (400) and creates nothing', async (_why, slug) => {
      const u = await createUser(app);
      const err = expectError(await call('POST', '/tenants', u, { name: 'Bad', slug }), 400, 'validation_failed');
      expect(fieldsOf(err)).toEqual(['body.slug']);
      expect((await call('GET', '/tenants', u)).json().data).toEqual([]);
    });

    it('rejects a missing or blank name, and an anonymous caller', async () => {
      const u = await createUser(app);
      expect(fieldsOf(expectError(await call('POST', '/tenants', u, { slug: 'no-name' }), 400))).toEqual(['body.name']);
      expectError(await call('POST', '/tenants', u, { name: '   ', slug: 'blank-name' }), 400, 'validation_failed');
      expectError(await call('POST', '/tenants', undefined, { name: 'Anon', slug: 'anon-co' }), 401, 'unauthorized');
    });
  });

  describe('GET /tenants and /tenants/:id', () => {
    it('lists only the caller’s tenants, each with the caller’s role', async () => {
      const u = await createUser(app);
      const own = await createTenant(app, u);
      const joined = await createTenant(app);
      await call('POST', `/tenants/${joined.id}/members`, joined.owner, { email: u.email, role: 'viewer' });
      await createTenant(app); // not u's
      const res = await call('GET', '/tenants', u);
      expect(res.statusCode).toBe(200);
      const rows = res.json().data as Array<{ id: string; role: string; slug: string }>;
      expect(rows.map((r) => [r.id, r.role]).sort()).toEqual(
        [
          [own.id, 'owner'],
          [joined.id, 'viewer'],
        ].sort(),
      );
      expectError(await call('GET', '/tenants'), 401);
    });

    it('shows a tenant to its members, with their role', async () => {
      const { t, staff } = await staffedTenant();
      for (const role of Object.keys(staff) as MemberRole[]) {
        const res = await call('GET', `/tenants/${t.id}`, staff[role]);
        expect(res.statusCode).toBe(200);
        expect(res.json().data).toMatchObject({ id: t.id, slug: t.slug, name: t.name, role });
      }
    });

    it('is a 404 for a non-member and for an unknown id, a 400 for a non-UUID', async () => {
      const t = await createTenant(app);
      const stranger = await createUser(app);
      const notMine = expectError(await call('GET', `/tenants/${t.id}`, stranger), 404, 'not_found');
      const unknown = expectError(await call('GET', '/tenants/00000000-0000-4000-8000-000000000000', stranger), 404);
      // Indistinguishable: a tenant you do not belong to might as well not exist.
      expect(notMine.message).toBe(unknown.message);
      expect(fieldsOf(expectError(await call('GET', '/tenants/not-a-uuid', t.owner), 400))).toEqual(['params.id']);
    });
  });

  describe('PUT /tenants/:id/settings', () => {
    const settings = { title: 'Acme Notes', description: 'What we ship', lang: 'pt-BR', timezone: 'Europe/Paris' };

    it('lets owners and admins replace the settings; others get 403 and change nothing', async () => {
      const { t, staff } = await staffedTenant();
      const put = await call('PUT', `/tenants/${t.id}/settings`, staff.owner, settings);
      expect(put.statusCode).toBe(200);
      expect(put.json().data).toMatchObject({ id: t.id, settings });

      // Replace, not merge: keys left out are gone.
      const admin = await call('PUT', `/tenants/${t.id}/settings`, staff.admin, { title: 'By admin' });
      expect(admin.statusCode).toBe(200);
      expect(admin.json().data.settings).toEqual({ title: 'By admin' });

      for (const role of ['editor', 'author', 'viewer'] as const) {
        expectError(await call('PUT', `/tenants/${t.id}/settings`, staff[role], { title: role }), 403, 'forbidden');
      }
      const now = await call('GET', `/tenants/${t.id}`, staff.viewer);
      expect(now.json().data.settings).toEqual({ title: 'By admin' });
    });

    it.each([
      ['an unknown key', { title: 'x', theme: 'dark' }, 'body'],
      ['an unknown time zone', { timezone: 'Mars/Olympus_Mons' }, 'body.timezone'],
      ['a malformed language tag', { lang: 'english!' }, 'body.lang'],
      ['a title of the wrong type', { title: 42 }, 'body.title'],
    ])('rejects %s with 400', async (_why, body, field) => {
      const t = await createTenant(app);
      const err = expectError(await call('PUT', `/tenants/${t.id}/settings`, t.owner, body), 400, 'validation_failed');
      expect(fieldsOf(err)).toContain(field);
      expect((await call('GET', `/tenants/${t.id}`, t.owner)).json().data.settings).toEqual({});
    });

    it('is a 404 for a non-member', async () => {
      const t = await createTenant(app);
      const stranger = await createUser(app);
      expectError(await call('PUT', `/tenants/${t.id}/settings`, stranger, settings), 404, 'not_found');
      expect((await call('GET', `/tenants/${t.id}`, t.owner)).json().data.settings).toEqual({});
    });
  });

  describe('GET /tenants/:id/usage', () => {
    const usageOf = async (t: TestTenant, u: TestUser = t.owner) => {
      const res = await call('GET', `/tenants/${t.id}/usage`, u);
      expect(res.statusCode).toBe(200);
      return res.json().data;
    };

    it('counts posts, published posts, members and content bytes as they change', async () => {
      const t = await createTenant(app);
      expect(await usageOf(t)).toEqual({ posts: 0, publishedPosts: 0, members: 1, contentBytes: 0, mediaBytes: 0 });

      const editor = await createMember(app, t, 'editor');
      // Bytes, not characters: title 5 + body 4 ("Åbc" is 4 bytes in UTF-8) + excerpt 2.
      const first = await createPost(app, t, editor, { title: 'Hello', body: 'Åbc', excerpt: 'ex' });
      expect(await usageOf(t)).toEqual({ posts: 1, publishedPosts: 0, members: 2, contentBytes: 11, mediaBytes: 0 });

      await transitionPost(app, t, editor, first.id, 'publish');
      await createPost(app, t, t.owner, { title: 'Two', body: '12345' });
      expect(await usageOf(t)).toMatchObject({ posts: 2, publishedPosts: 1, contentBytes: 19 });

      await transitionPost(app, t, editor, first.id, 'archive');
      expect(await usageOf(t)).toMatchObject({ posts: 2, publishedPosts: 0 });

      // Another tenant's activity does not count here.
      const other = await createTenant(app);
      await createPost(app, other, other.owner);
      expect(await usageOf(t)).toMatchObject({ posts: 2, members: 2, contentBytes: 19 });
    });

    it('is for owners and admins only', async () => {
      const { t, staff } = await staffedTenant();
      expect(await usageOf(t, staff.admin)).toMatchObject({ members: 5 });
      for (const role of ['editor', 'author', 'viewer'] as const) {
        expectError(await call('GET', `/tenants/${t.id}/usage`, staff[role]), 403, 'forbidden');
      }
      expectError(await call('GET', `/tenants/${t.id}/usage`, await createUser(app)), 404, 'not_found');
    });
  });
});
