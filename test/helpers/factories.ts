import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { MemberRole } from '../../src/platform/db/schema.js';

/** Small factories over the real HTTP API: each call makes fresh, unique data. */

const unique = () => randomBytes(4).toString('hex');
export const PASSWORD = 'correct horse battery staple';

export interface TestUser {
  id: string;
  email: string;
  name: string;
  accessToken: string;
  refreshToken: string;
  /** Headers for an authenticated request (JSON). */
  auth: Record<string, string>;
}

/** A registered, signed-in user; their email is confirmed unless `verified: false`. */
export async function createUser(
  app: FastifyInstance,
  over: { email?: string; name?: string; verified?: boolean } = {},
): Promise<TestUser> {
  const email = over.email ?? `user-${unique()}@example.com`;
  const name = over.name ?? `User ${unique()}`;
  const reg = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/register',
    payload: { email, password: PASSWORD, name },
  });
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`);
  if (over.verified !== false) {
    if (!app.confirmEmailForTest) throw new Error('createUser needs an app from createTestApp or createTestStack');
    await app.confirmEmailForTest(reg.json().data.user.id);
  }
  const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } });
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`);
  const d = login.json().data;
  return {
    id: d.user.id,
    email,
    name,
    accessToken: d.accessToken,
    refreshToken: d.refreshToken,
    auth: { authorization: `Bearer ${d.accessToken}` },
  };
}

/**
 * Signs `user` in again and puts the new tokens in place, in the same `auth` object (so every
 * holder of it sees them): for suites that ended all of a user's sessions (logout-all) and go on.
 */
export async function renewSession(app: FastifyInstance, user: TestUser): Promise<void> {
  const login = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { email: user.email, password: PASSWORD },
  });
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`);
  const d = login.json().data;
  user.accessToken = d.accessToken;
  user.refreshToken = d.refreshToken;
  user.auth.authorization = `Bearer ${d.accessToken}`;
}

export interface TestTenant {
  id: string;
  slug: string;
  name: string;
  owner: TestUser;
  /** Headers for `user` acting in this tenant. */
  as(user: TestUser): Record<string, string>;
}

export async function createTenant(app: FastifyInstance, owner?: TestUser): Promise<TestTenant> {
  const o = owner ?? (await createUser(app));
  const slug = `t-${unique()}`;
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/tenants',
    headers: o.auth,
    payload: { name: `Tenant ${slug}`, slug },
  });
  if (res.statusCode !== 201) throw new Error(`create tenant failed: ${res.statusCode} ${res.body}`);
  const id = res.json().data.id as string;
  return { id, slug, name: `Tenant ${slug}`, owner: o, as: (u) => ({ ...u.auth, 'x-tenant-id': id }) };
}

/** A new user who is a member of `tenant` with `role` (added by the owner). */
export async function createMember(app: FastifyInstance, tenant: TestTenant, role: MemberRole): Promise<TestUser> {
  const user = await createUser(app);
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/tenants/${tenant.id}/members`,
    headers: tenant.owner.auth,
    payload: { email: user.email, role },
  });
  if (res.statusCode !== 201) throw new Error(`add member failed: ${res.statusCode} ${res.body}`);
  return user;
}

export async function createPost(
  app: FastifyInstance,
  tenant: TestTenant,
  author: TestUser,
  over: { title?: string; body?: string; slug?: string; excerpt?: string } = {},
) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/posts',
    headers: tenant.as(author),
    payload: { title: over.title ?? `Post ${unique()}`, body: over.body ?? 'Body text', ...over },
  });
  if (res.statusCode !== 201) throw new Error(`create post failed: ${res.statusCode} ${res.body}`);
  return res.json().data as {
    id: string;
    slug: string;
    version: number;
    status: string;
    authorId: string;
    title: string;
    html: string;
    readingTime: number;
    body: string;
  };
}

/** Moves `post` to another status as `user` (publish, unpublish or archive); returns the post. */
export async function transitionPost(
  app: FastifyInstance,
  tenant: TestTenant,
  user: TestUser,
  postId: string,
  action: 'publish' | 'unpublish' | 'archive',
) {
  const res = await app.inject({ method: 'POST', url: `/api/v1/posts/${postId}/${action}`, headers: tenant.as(user) });
  if (res.statusCode !== 200) throw new Error(`${action} failed: ${res.statusCode} ${res.body}`);
  return res.json().data as { id: string; status: string; version: number; publishedAt: string | null };
}

/** A pending invitation of an email with no account yet (sent by the owner unless `by` is given). */
export async function createInvitation(
  app: FastifyInstance,
  tenant: TestTenant,
  role: MemberRole,
  over: { email?: string; by?: TestUser } = {},
): Promise<{ id: string; email: string; role: MemberRole }> {
  const email = over.email ?? `invitee-${unique()}@example.com`;
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/tenants/${tenant.id}/members`,
    headers: (over.by ?? tenant.owner).auth,
    payload: { email, role },
  });
  if (res.statusCode !== 202) throw new Error(`invite failed: ${res.statusCode} ${res.body}`);
  return { id: res.json().data.invitationId, email, role };
}
