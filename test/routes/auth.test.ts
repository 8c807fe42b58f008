import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createTenant, createUser, PASSWORD } from '../helpers/factories.js';

describe.each(databaseKinds)('auth routes on $name', (kind) => {
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

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object, headers });

  it('registers a user and returns the public fields only', async () => {
    const res = await post('/auth/register', { email: 'Grace@Example.com', password: PASSWORD, name: 'Grace' });
    expect(res.statusCode).toBe(201);
    const user = res.json().data.user;
    expect(user).toEqual({ id: expect.any(String), email: 'grace@example.com', name: 'Grace' });
    expect(res.body).not.toContain('password');
  });

  it('rejects a short password with field details and creates nothing', async () => {
    const res = await post('/auth/register', { email: 'short@example.com', password: 'short', name: 'S' });
    expect(res.statusCode).toBe(400);
    const err = res.json().error;
    expect(err.code).toBe('validation_failed');
    expect(err.details).toContainEqual(expect.objectContaining({ field: 'body.password' }));
    expect(err.requestId).toBe(res.headers['x-request-id']);
    const login = await post('/auth/login', { email: 'short@example.com', password: 'short' });
    expect(login.statusCode).toBe(401);
  });

  it('answers a taken email with 409, whatever its case', async () => {
    const u = await createUser(app);
    const res = await post('/auth/register', { email: u.email.toUpperCase(), password: PASSWORD, name: 'Again' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('email_taken');
  });

  it('logs in with a token pair and rejects wrong credentials alike', async () => {
    const u = await createUser(app);
    const ok = await post('/auth/login', { email: u.email, password: PASSWORD });
    expect(ok.statusCode).toBe(200);
    const d = ok.json().data;
    expect(d).toMatchObject({ expiresIn: 900, tokenType: 'Bearer', user: { id: u.id, email: u.email } });
    expect(d.accessToken.split('.')).toHaveLength(3);
    const wrongPw = await post('/auth/login', { email: u.email, password: 'not the password' });
    const noUser = await post('/auth/login', { email: 'nobody@example.com', password: 'not the password' });
    expect(wrongPw.statusCode).toBe(401);
    expect(noUser.statusCode).toBe(401);
    expect(wrongPw.json().error.message).toBe(noUser.json().error.message);
  });

  it('rotates refresh tokens; the old one then fails and its reuse ends the session', async () => {
    const u = await createUser(app);
    const first = await post('/auth/refresh', { refreshToken: u.refreshToken });
    expect(first.statusCode).toBe(200);
    const next = first.json().data.refreshToken as string;
    expect(next).not.toBe(u.refreshToken);
    const replay = await post('/auth/refresh', { refreshToken: u.refreshToken });
    expect(replay.statusCode).toBe(401);
    // The replay revoked the family: the newest token of that session is dead too.
    const afterReuse = await post('/auth/refresh', { refreshToken: next });
    expect(afterReuse.statusCode).toBe(401);
  });

  it('logout revokes the refresh token and answers 204', async () => {
    const u = await createUser(app);
    const out = await post('/auth/logout', { refreshToken: u.refreshToken });
    expect(out.statusCode).toBe(204);
    expect(out.body).toBe('');
    const again = await post('/auth/refresh', { refreshToken: u.refreshToken });
    expect(again.statusCode).toBe(401);
  });

  it('GET /auth/me returns the user and memberships; bad tokens are 401', async () => {
    const u = await createUser(app);
    const t = await createTenant(app, u);
    const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: u.auth });
    expect(me.statusCode).toBe(200);
    expect(me.json().data.user).toMatchObject({ id: u.id, email: u.email });
    expect(me.json().data.memberships).toEqual([{ tenantId: t.id, name: t.name, slug: t.slug, role: 'owner' }]);

    for (const authorization of [undefined, 'Bearer nope', 'Basic abc', `Bearer ${u.accessToken}x`]) {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/auth/me',
        headers: authorization ? { authorization } : {},
      });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toMatch(/unauthorized|invalid_token/);
    }
  });

  it('binds a session to a tenant with the tid claim, only for a member', async () => {
    const u = await createUser(app);
    const t = await createTenant(app, u);
    const other = await createTenant(app);
    const ok = await post('/auth/login', { email: u.email, password: PASSWORD, tenantId: t.id });
    expect(ok.statusCode).toBe(200);
    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/posts',
      headers: { authorization: `Bearer ${ok.json().data.accessToken}` },
    });
    expect(list.statusCode).toBe(200);
    const denied = await post('/auth/login', { email: u.email, password: PASSWORD, tenantId: other.id });
    expect(denied.statusCode).toBe(404);
  });
});
