import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invitations, type MemberRole, memberships, posts, tenants } from '../../src/platform/db/schema.js';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import {
  createInvitation,
  createMember,
  createPost,
  createTenant,
  PASSWORD,
  type TestTenant,
  type TestUser,
  transitionPost,
} from '../helpers/factories.js';

/**
 * Every member of tenant A, whatever their role, tries every tenant-scoped route against tenant B:
 * naming B in X-Tenant-ID, in the subdomain and in /tenants/:id, and naming B's posts, members and
 * invitations from inside A. Each attempt must be a 404 (or a 403 where A's own role check comes
 * first), and B must be exactly as it was.
 */

const BASE_HOST = 'blog.test';
const ROLES: MemberRole[] = ['owner', 'admin', 'editor', 'author', 'viewer'];
const SECRET = 'b-secret';

interface Attempt {
  label: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  payload?: object;
  expected: 404 | 403;
}

describe.each(databaseKinds)('cross-tenant access on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let A: TestTenant;
  let B: TestTenant;
  const staffA = {} as Record<MemberRole, TestUser>;
  let staffB: TestUser[];
  let postsB: Array<{ id: string; slug: string; version: number }>;
  let invitationB: string;
  let before: Awaited<ReturnType<typeof snapshotB>>;
  const tally = { attempts: 0, succeeded: 0 };

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db, { BASE_HOST });
    A = await createTenant(app);
    staffA.owner = A.owner;
    for (const role of ROLES.slice(1)) staffA[role] = await createMember(app, A, role);
    await createPost(app, A, A.owner, { title: 'A post' });
    await createInvitation(app, A, 'viewer');

    B = await createTenant(app);
    staffB = [B.owner];
    for (const role of ['admin', 'editor', 'viewer'] as const) staffB.push(await createMember(app, B, role));
    const [draft, published, archived] = [
      await createPost(app, B, B.owner, { title: `${SECRET} draft`, body: `${SECRET} body` }),
      await createPost(app, B, staffB[2]!, { title: `${SECRET} published` }),
      await createPost(app, B, staffB[2]!, { title: `${SECRET} archived` }),
    ];
    const p2 = await transitionPost(app, B, B.owner, published.id, 'publish');
    const p3 = await transitionPost(app, B, B.owner, archived.id, 'archive');
    postsB = [draft, { ...published, version: p2.version }, { ...archived, version: p3.version }];
    const put = await app.inject({
      method: 'PUT',
      url: `/api/v1/tenants/${B.id}/settings`,
      headers: B.owner.auth,
      payload: { title: `${SECRET} title`, timezone: 'Asia/Tokyo' },
    });
    expect(put.statusCode).toBe(200);
    invitationB = (await createInvitation(app, B, 'editor', { email: `${SECRET}-invitee@example.com` })).id;
    before = await snapshotB();
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  async function snapshotB() {
    const db = tdb.db.system;
    return {
      tenant: await db.select().from(tenants).where(eq(tenants.id, B.id)),
      posts: await db.select().from(posts).where(eq(posts.tenantId, B.id)).orderBy(posts.id),
      memberships: await db
        .select()
        .from(memberships)
        .where(eq(memberships.tenantId, B.id))
        .orderBy(memberships.userId),
      invitations: await db.select().from(invitations).where(eq(invitations.tenantId, B.id)).orderBy(invitations.id),
    };
  }

  /**
   * Every posts route, against B's posts, with the given way of naming the tenant. Inside A
   * (`readOnly` set for a viewer) the route's role check comes first: a viewer's writes are 403.
   */
  function postAttempts(
    via: string,
    headers: Record<string, string>,
    withCollection: boolean,
    readOnly = false,
  ): Attempt[] {
    const out: Attempt[] = [];
    const add = (method: Attempt['method'], url: string, payload?: object, extra: Record<string, string> = {}) =>
      out.push({
        label: `${via}: ${method} ${url}`,
        method,
        url,
        headers: { ...headers, ...extra },
        payload,
        expected: readOnly && method !== 'GET' ? 403 : 404,
      });
    if (withCollection) {
      add('GET', '/posts');
      add('GET', '/posts?status=published&sort=published_at');
      add('POST', '/posts', { title: 'Planted', body: 'x', slug: 'planted' });
    }
    for (const p of postsB) {
      add('GET', `/posts/${p.id}`);
      add('GET', `/posts/${p.slug}`);
      add('PATCH', `/posts/${p.id}`, { title: 'Hijacked', version: p.version });
      for (const action of ['publish', 'unpublish', 'archive'])
        add('POST', `/posts/${p.id}/${action}`, { version: p.version });
      add('DELETE', `/posts/${p.id}`, undefined, { 'if-match': `"${p.version}"` });
    }
    return out;
  }

  function attemptsFor(role: MemberRole): Attempt[] {
    const u = staffA[role];
    const manager = role === 'owner' || role === 'admin';
    const list: Attempt[] = [
      ...postAttempts('X-Tenant-ID of B', { ...u.auth, 'x-tenant-id': B.id }, true),
      ...postAttempts('subdomain of B', { ...u.auth, host: `${B.slug}.${BASE_HOST}` }, true),
      ...postAttempts('X-Tenant-ID of A, B ids', { ...u.auth, 'x-tenant-id': A.id }, false, role === 'viewer'),
    ];
    const onB = (method: Attempt['method'], path: string, payload?: object) =>
      list.push({
        label: `B path: ${method} ${path}`,
        method,
        url: `/tenants/${B.id}${path}`,
        headers: u.auth,
        payload,
        expected: 404,
      });
    onB('GET', '');
    onB('PUT', '/settings', { title: 'Hijacked' });
    onB('GET', '/usage');
    onB('GET', '/members');
    onB('POST', '/members', { email: u.email, role: 'owner' });
    onB('POST', '/members', { email: 'stranger@example.com', role: 'admin' });
    for (const target of [...staffB.map((m) => m.id), u.id]) {
      onB('PATCH', `/members/${target}`, { role: 'owner' });
      onB('DELETE', `/members/${target}`);
    }
    onB('GET', '/invitations');
    onB('DELETE', `/invitations/${invitationB}`);
    // Inside A, naming B's people and invitation: A's role check may come first.
    const onA = (method: Attempt['method'], path: string, payload?: object) =>
      list.push({
        label: `A path, B ids: ${method} ${path}`,
        method,
        url: `/tenants/${A.id}${path}`,
        headers: u.auth,
        payload,
        expected: manager ? 404 : 403,
      });
    for (const target of staffB) {
      onA('PATCH', `/members/${target.id}`, { role: 'viewer' });
      onA('DELETE', `/members/${target.id}`);
    }
    onA('DELETE', `/invitations/${invitationB}`);
    list.push({
      label: 'sign in bound to B',
      method: 'POST',
      url: '/auth/login',
      headers: {},
      payload: { email: u.email, password: PASSWORD, tenantId: B.id },
      expected: 404,
    });
    return list;
  }

  it.each(ROLES)('A’s %s gets nothing of B from any route', async (role) => {
    const mismatches: string[] = [];
    for (const a of attemptsFor(role)) {
      const res = await app.inject({
        method: a.method,
        url: `/api/v1${a.url}`,
        headers: a.headers,
        ...(a.payload && { payload: a.payload }),
      });
      tally.attempts++;
      if (res.statusCode < 300) tally.succeeded++;
      // A 404 must be the app's "not found", not an unknown route (which would prove nothing).
      const code = res.statusCode < 300 ? 'success' : res.json().error?.code;
      const wanted = a.expected === 404 ? 'not_found' : 'forbidden';
      if (res.statusCode !== a.expected || code !== wanted || res.body.includes(SECRET)) {
        mismatches.push(`${a.label} → ${res.statusCode} ${res.body.slice(0, 160)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('lists inside A never include B’s members or invitations', async () => {
    for (const role of ['owner', 'admin'] as const) {
      const headers = staffA[role].auth;
      for (const path of ['members', 'invitations']) {
        const res = await app.inject({ method: 'GET', url: `/api/v1/tenants/${A.id}/${path}`, headers });
        expect(res.statusCode).toBe(200);
        expect(res.body).not.toContain(SECRET);
        for (const m of staffB) expect(res.body).not.toContain(m.id);
      }
    }
  });

  it('leaves B exactly as it was', async () => {
    expect(tally.attempts).toBeGreaterThan(400);
    console.log(`cross-tenant (${kind.name}): ${tally.attempts} attempts, ${tally.succeeded} succeeded`);
    expect(tally.succeeded).toBe(0);
    const after = await snapshotB();
    expect(after.posts).toHaveLength(3);
    expect(after.memberships).toHaveLength(4);
    expect(after.invitations).toHaveLength(1);
    expect(after).toEqual(before);
    // And B's owner still sees it all through the API.
    const list = await app.inject({ method: 'GET', url: '/api/v1/posts', headers: B.as(B.owner) });
    expect(
      list
        .json()
        .data.map((p: { id: string }) => p.id)
        .sort(),
    ).toEqual(postsB.map((p) => p.id).sort());
  });
});
