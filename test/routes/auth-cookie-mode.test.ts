import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createUser, PASSWORD } from '../helpers/factories.js';

// Cookie mode for browsers: the refresh token in an httpOnly cookie, and a CSRF token required
// whenever that cookie is what authenticates the request. Bearer clients are unaffected.
describe.each(databaseKinds)('cookie mode on $name', (kind) => {
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

  /** name → {value, attributes} of the Set-Cookie headers of a response. */
  const setCookies = (res: LightMyRequestResponse) =>
    Object.fromEntries(res.cookies.map((c) => [c.name, c as unknown as Record<string, unknown>]));
  const cookieHeader = (jar: Record<string, string>) =>
    Object.entries(jar)
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');

  async function cookieLogin() {
    const u = await createUser(app);
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: u.email, password: PASSWORD, mode: 'cookie' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json().data;
    const set = setCookies(res);
    const jar = { quire_refresh: String(set.quire_refresh!.value), quire_csrf: String(set.quire_csrf!.value) };
    return { u, data, set, jar };
  }
  const refresh = (jar: Record<string, string>, csrf?: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      headers: { cookie: cookieHeader(jar), ...(csrf && { 'x-csrf-token': csrf }) },
    });

  it('sets the refresh token as an httpOnly, Secure, SameSite=Strict cookie on the auth path only', async () => {
    const { data, set } = await cookieLogin();
    expect(data.refreshToken).toBeUndefined();
    expect(data.accessToken).toEqual(expect.any(String));
    expect(data.csrfToken).toEqual(expect.any(String));
    for (const name of ['quire_refresh', 'quire_csrf']) {
      expect(set[name]).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/api/v1/auth' });
    }
    expect(set.quire_refresh!.maxAge).toBe(30 * 86_400);
  });

  it('refresh with the cookie needs the CSRF token; with it the cookie rotates and the old one is dead', async () => {
    const { data, jar } = await cookieLogin();
    expectError(await refresh(jar), 403, 'csrf_invalid');
    expectError(await refresh(jar, 'forged-token'), 403, 'csrf_invalid');
    // A CSRF token without its secret cookie is no good either.
    expectError(await refresh({ quire_refresh: jar.quire_refresh }, data.csrfToken), 403, 'csrf_invalid');

    const ok = await refresh(jar, data.csrfToken);
    expect(ok.statusCode, ok.body).toBe(200);
    const next = ok.json().data;
    expect(next.refreshToken).toBeUndefined();
    expect(next.csrfToken).toEqual(expect.any(String));
    const rotated = String(setCookies(ok).quire_refresh!.value);
    expect(rotated).not.toBe(jar.quire_refresh);
    // The old cookie (replayed) is refused, and revokes the session.
    expectError(await refresh(jar, data.csrfToken), 401, 'invalid_refresh_token');
    expectError(await refresh({ ...jar, quire_refresh: rotated }, next.csrfToken), 401, 'invalid_refresh_token');
  });

  it('logout with the cookie needs the CSRF token, then clears the cookie and ends the session', async () => {
    const { data, jar } = await cookieLogin();
    const noCsrf = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: { cookie: cookieHeader(jar) },
    });
    expectError(noCsrf, 403, 'csrf_invalid');
    const out = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: { cookie: cookieHeader(jar), 'x-csrf-token': data.csrfToken },
    });
    expect(out.statusCode, out.body).toBe(204);
    const cleared = setCookies(out).quire_refresh!;
    expect(cleared.value).toBe('');
    expectError(await refresh(jar, data.csrfToken), 401, 'invalid_refresh_token');
  });

  it('bearer clients send the refresh token in the body and need no CSRF token; no token at all is a 400', async () => {
    const u = await createUser(app);
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken: u.refreshToken },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().data.refreshToken).toEqual(expect.any(String));
    expect(res.cookies).toEqual([]);
    expectError(await app.inject({ method: 'POST', url: '/api/v1/auth/refresh' }), 400, 'refresh_token_required');
  });
});
