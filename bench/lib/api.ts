import { randomBytes } from 'node:crypto';
import { postContent } from './seed.js';

/** What a user signs in with. */
export interface Credentials {
  email: string;
  password: string;
}

/** A signed-in benchmark user and the tenant it owns, created through Quire's own HTTP API. */
export interface Account extends Credentials {
  userId: string;
  tenantId: string;
  accessToken: string;
  /** When the access token was issued (ms since epoch): tokens last 15 minutes. */
  issuedAt: number;
  /** Posts created through the API (the rest of the seed goes in with SQL). */
  postIds: string[];
  /** An admin API key of the tenant (scope content:read), created through the API. */
  apiKey: string;
}

interface CallOptions {
  token?: string;
  tenantId?: string;
  body?: unknown;
  expect?: number;
}

/** One JSON request to Quire; throws unless the status is `expect` (default 200). */
export async function call<T = unknown>(origin: string, method: string, path: string, opts: CallOptions = {}) {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.tenantId) headers['x-tenant-id'] = opts.tenantId;
  const res = await fetch(origin + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  const expect = opts.expect ?? 200;
  if (res.status !== expect) {
    throw new Error(`${method} ${path}: expected ${expect}, got ${res.status}: ${text.slice(0, 300)}`);
  }
  return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : null) as T };
}

type LoginResult = { data: { accessToken: string; user: { id: string } } };

export async function login(origin: string, email: string, password: string) {
  const { json } = await call<LoginResult>(origin, 'POST', '/api/v1/auth/login', { body: { email, password } });
  return { accessToken: json.data.accessToken, userId: json.data.user.id, issuedAt: Date.now() };
}

/** Signs in again when the access token is older than `maxAgeMs` (default 10 minutes). */
export async function refreshIfOld(origin: string, account: Account, maxAgeMs = 10 * 60_000): Promise<boolean> {
  if (Date.now() - account.issuedAt < maxAgeMs) return false;
  Object.assign(account, await login(origin, account.email, account.password));
  return true;
}

/** Register, sign in, create a tenant, and create `apiPosts` posts through the API. */
export async function createAccount(origin: string, apiPosts: number): Promise<Account> {
  const id = randomBytes(4).toString('hex');
  const email = `bench-${id}@example.com`;
  const password = `bench-password-${randomBytes(8).toString('hex')}`;
  await call(origin, 'POST', '/api/v1/auth/register', {
    body: { email, password, name: 'Bench Owner' },
    expect: 201,
  });
  const session = await login(origin, email, password);
  const tenant = await call<{ data: { id: string } }>(origin, 'POST', '/api/v1/tenants', {
    token: session.accessToken,
    body: { name: 'Bench Publication', slug: `bench-${id}` },
    expect: 201,
  });
  const key = await call<{ data: { key: string } }>(origin, 'POST', `/api/v1/tenants/${tenant.json.data.id}/api-keys`, {
    token: session.accessToken,
    body: { name: 'Bench integration', scopes: ['content:read'] },
    expect: 201,
  });
  const account: Account = {
    email,
    password,
    ...session,
    tenantId: tenant.json.data.id,
    postIds: [],
    apiKey: key.json.data.key,
  };
  for (let i = 0; i < apiPosts; i++) {
    const post = await call<{ data: { id: string } }>(origin, 'POST', '/api/v1/posts', {
      token: account.accessToken,
      tenantId: account.tenantId,
      body: postContent(i),
      expect: 201,
    });
    account.postIds.push(post.json.data.id);
  }
  return account;
}

/**
 * Registers `count` users (no tenant) and signs each in once, to check their credentials: the
 * login storm's accounts.
 */
export async function createUsers(origin: string, count: number): Promise<Credentials[]> {
  const users: Credentials[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomBytes(4).toString('hex');
    const user = {
      email: `bench-login-${id}@example.com`,
      password: `bench-password-${randomBytes(8).toString('hex')}`,
    };
    await call(origin, 'POST', '/api/v1/auth/register', {
      body: { ...user, name: `Bench Reader ${i + 1}` },
      expect: 201,
    });
    await login(origin, user.email, user.password);
    users.push(user);
  }
  return users;
}

/** A second publication of the same owner, read through the Content API with its own key. */
export interface Site {
  tenantId: string;
  slug: string;
  /** The Content API key (`?key=`). */
  contentKey: string;
}

/** Creates a tenant owned by `account` and a Content API key for it, through the API. */
export async function createSite(origin: string, account: Account, name: string): Promise<Site> {
  const slug = `bench-site-${randomBytes(4).toString('hex')}`;
  const tenant = await call<{ data: { id: string } }>(origin, 'POST', '/api/v1/tenants', {
    token: account.accessToken,
    body: { name, slug },
    expect: 201,
  });
  const key = await call<{ data: { key: string } }>(origin, 'POST', '/api/v1/content-keys', {
    token: account.accessToken,
    tenantId: tenant.json.data.id,
    body: { name: 'Bench' },
    expect: 201,
  });
  return { tenantId: tenant.json.data.id, slug, contentKey: key.json.data.key };
}
