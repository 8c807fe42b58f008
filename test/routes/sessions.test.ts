import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createTenant, createUser, PASSWORD, type TestUser } from '../helpers/factories.js';
import { sessionIdOf } from '../helpers/jwt.js';

/**
 * Each person's list of sessions (GET /auth/sessions) and signing one out (DELETE
 * /auth/sessions/:id), over the HTTP API: where and when, from which client, which one is
 * asking; another person's session is a 404; a signed-out session's refresh token stops working.
 */

interface SessionInfo {
  id: string;
  current: boolean;
  createdAt: string;
  lastActiveAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  tenantId: string | null;
  amr: string[];
}
interface Pair {
  accessToken: string;
  refreshToken: string;
  auth: Record<string, string>;
}

describe.each(databaseKinds)('sessions on $name', (kind) => {
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

  const pairOf = (d: { accessToken: string; refreshToken: string }): Pair => ({
    accessToken: d.accessToken,
    refreshToken: d.refreshToken,
    auth: { authorization: `Bearer ${d.accessToken}` },
  });

  /** Signs in from a given client: address and user agent. */
  async function signIn(u: TestUser, from: { ip: string; ua: string }, tenantId?: string): Promise<Pair> {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      remoteAddress: from.ip,
      headers: { 'user-agent': from.ua },
      payload: { email: u.email, password: PASSWORD, ...(tenantId ? { tenantId } : {}) },
    });
    expect(res.statusCode, res.body).toBe(200);
    return pairOf(res.json().data);
  }
  const refresh = (refreshToken: string, from?: { ip: string; ua: string }) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      ...(from ? { remoteAddress: from.ip, headers: { 'user-agent': from.ua } } : {}),
      payload: { refreshToken },
    });
  async function sessions(auth: Record<string, string>): Promise<SessionInfo[]> {
    const res = await app.inject({ method: 'GET', url: '/api/v1/auth/sessions', headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data;
  }
  const signOut = (auth: Record<string, string>, id: string) =>
    app.inject({ method: 'DELETE', url: `/api/v1/auth/sessions/${id}`, headers: auth });

  const laptop = { ip: '203.0.113.7', ua: 'Mozilla/5.0 (Macintosh) Firefox/140.0' };
  const phone = { ip: '198.51.100.23', ua: 'Quire/3.1 (iPhone; iOS 19)' };
  const train = { ip: '192.0.2.99', ua: 'Quire/3.1 (iPhone; iOS 19)' };

  it('lists each sign-in with where, when and how; marks the current one; a refresh moves it to the top with its new address', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const a = await signIn(u, laptop);
    const b = await signIn(u, phone, tenant.id);

    const listed = await sessions(a.auth);
    // createUser signed in once too.
    expect(listed).toHaveLength(3);
    expect(listed.slice(0, 2).map((s) => s.id)).toEqual([sessionIdOf(b.accessToken), sessionIdOf(a.accessToken)]);
    expect(listed[0]).toEqual({
      id: sessionIdOf(b.accessToken),
      current: false,
      createdAt: expect.any(String),
      lastActiveAt: expect.any(String),
      expiresAt: expect.any(String),
      ip: phone.ip,
      userAgent: phone.ua,
      tenantId: tenant.id,
      amr: ['pwd'],
    });
    expect(listed[1]).toMatchObject({ current: true, ip: laptop.ip, userAgent: laptop.ua, tenantId: null });
    expect(listed.filter((s) => s.current)).toHaveLength(1);
    const days = (Date.parse(listed[0]!.expiresAt) - Date.parse(listed[0]!.createdAt)) / 86_400_000;
    expect(days).toBeCloseTo(30, 1);
    // No token, no hash, nothing secret in the list.
    expect(JSON.stringify(listed)).not.toContain(a.refreshToken);

    // The laptop refreshes from a train: same session, now the most recent, with the new address.
    await new Promise((r) => setTimeout(r, 5));
    const refreshed = await refresh(a.refreshToken, train);
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    const after = await sessions(pairOf(refreshed.json().data).auth);
    expect(after).toHaveLength(3);
    expect(after[0]).toMatchObject({
      id: sessionIdOf(a.accessToken),
      current: true,
      ip: train.ip,
      userAgent: train.ua,
    });
    expect(after[0]!.createdAt).toBe(listed[1]!.createdAt);
    expect(Date.parse(after[0]!.lastActiveAt)).toBeGreaterThan(Date.parse(listed[1]!.lastActiveAt));
  });

  it('signing one session out ends its refresh token at once, leaves the others, and is audited', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const a = await signIn(u, laptop);
    const b = await signIn(u, phone);

    // Warm the cache with b's session on the list: signing it out must still end it at once.
    expect((await sessions(b.auth)).length).toBeGreaterThan(0);
    const res = await signOut(a.auth, sessionIdOf(b.accessToken));
    expect(res.statusCode, res.body).toBe(204);
    expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: b.auth }), 401, 'invalid_token');
    expectError(await refresh(b.refreshToken), 401, 'invalid_refresh_token');
    const left = await sessions(a.auth);
    expect(left.map((s) => s.id)).not.toContain(sessionIdOf(b.accessToken));
    expect(left.map((s) => s.id)).toContain(sessionIdOf(a.accessToken));
    expect((await refresh(a.refreshToken)).statusCode).toBe(200);

    // Twice: it has ended.
    expectError(await signOut(a.auth, sessionIdOf(b.accessToken)), 404, 'not_found');

    const log = await app.inject({
      method: 'GET',
      url: '/api/v1/audit-log?action=sessions.revoked',
      headers: tenant.as(u),
    });
    expect(log.statusCode, log.body).toBe(200);
    expect(log.json().data).toEqual([
      expect.objectContaining({
        actorUserId: u.id,
        details: { revoked: 1, sessionId: sessionIdOf(b.accessToken) },
        ip: expect.any(String),
      }),
    ]);
  });

  it('another person’s session is a 404 and keeps working; a malformed id is a 400; no token is a 401', async () => {
    const u = await createUser(app);
    const other = await createUser(app);
    const theirs = await signIn(other, phone);
    expectError(await signOut(u.auth, sessionIdOf(theirs.accessToken)), 404, 'not_found');
    expectError(await signOut(u.auth, randomUUID()), 404, 'not_found');
    expect((await refresh(theirs.refreshToken)).statusCode).toBe(200);
    expect((await sessions(u.auth)).map((s) => s.id)).not.toContain(sessionIdOf(theirs.accessToken));

    expectError(await signOut(u.auth, 'not-a-uuid'), 400, 'validation_failed');
    expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/sessions' }), 401);
    expectError(await app.inject({ method: 'DELETE', url: `/api/v1/auth/sessions/${randomUUID()}` }), 401);
  });

  it('signing a session out, logout and logout-all end its access tokens at once, not when they expire', async () => {
    const u = await createUser(app);
    const a = await signIn(u, laptop);
    const b = await signIn(u, phone);
    const c = await signIn(u, train);

    expect((await signOut(c.auth, sessionIdOf(c.accessToken))).statusCode).toBe(204);
    expectError(await refresh(c.refreshToken), 401, 'invalid_refresh_token');
    expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: c.auth }), 401, 'invalid_token');
    const logout = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      payload: { refreshToken: b.refreshToken },
    });
    expect(logout.statusCode, logout.body).toBe(204);
    expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: b.auth }), 401, 'invalid_token');
    const left = (await sessions(a.auth)).map((s) => s.id);
    expect(left).toContain(sessionIdOf(a.accessToken));
    expect(left).not.toContain(sessionIdOf(b.accessToken));
    expect(left).not.toContain(sessionIdOf(c.accessToken));

    const all = await app.inject({ method: 'POST', url: '/api/v1/auth/logout-all', headers: a.auth });
    expect(all.statusCode, all.body).toBe(204);
    expectError(
      await app.inject({ method: 'GET', url: '/api/v1/auth/sessions', headers: a.auth }),
      401,
      'invalid_token',
    );
    expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: u.auth }), 401, 'invalid_token');
    // A new sign-in works at once (its session is looked up, not refused from the cached list).
    const again = await signIn(u, laptop);
    expect((await sessions(again.auth)).map((s) => s.id)).toEqual([sessionIdOf(again.accessToken)]);
  });
});
