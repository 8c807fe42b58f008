import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { expectError } from '../helpers/errors.js';
import {
  createMember,
  createTenant,
  createUser,
  PASSWORD,
  type TestTenant,
  type TestUser,
} from '../helpers/factories.js';
import { claimsOf } from '../helpers/jwt.js';
import { type OidcAccount, type OidcTestProvider, startOidcProvider } from '../helpers/oidc-provider.js';
import { enableTotp, nextCode } from '../helpers/totp.js';

/**
 * Sign-in through identity providers, end to end: the app (over inject) against REAL OpenID
 * Connect providers (oidc-provider on 127.0.0.1, driven by `signIn()` as the browser) and a REAL
 * DNS server (dns2 on 127.0.0.1) for domain verification.
 *
 * Two providers: the platform's ("acme-idp", from OIDC_PROVIDERS) and an organization's own
 * (configured by its owner with PUT /tenants/:id/sso).
 */

const PUBLIC_URL = 'http://quire.test';
const CALLBACK = `${PUBLIC_URL}/api/v1/auth/oidc/callback`;
const STATE_COOKIE = 'quire_oidc_state';
const PLATFORM = { clientId: 'quire-platform', clientSecret: 'platform-client-secret-0123456789abcdef' };
const ORG = { clientId: 'quire-acme-org', clientSecret: 'org-client-secret-fedcba9876543210' };
const PLATFORM_AUTHORIZE = '/api/v1/auth/oidc/acme-idp/authorize';

const uniq = () => randomBytes(4).toString('hex');

type Session = {
  accessToken: string;
  refreshToken?: string;
  csrfToken?: string;
  expiresIn: number;
  tokenType: 'Bearer';
  user: { id: string; email: string; name: string };
};
type Challenge = { mfaRequired: true; mfaToken: string; methods: string[]; expiresIn: number };
type AuditEntry = { action: string; actorUserId: string | null; details: Record<string, unknown> };

function sessionOf(res: LightMyRequestResponse): Session {
  expect(res.statusCode, res.body).toBe(200);
  const data = res.json().data as Session | Challenge;
  expect(data, 'a session, not a second-factor challenge').not.toHaveProperty('mfaRequired');
  return data as Session;
}

describe.each(databaseKinds)('single sign-on on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let platformOp: OidcTestProvider;
  let orgOp: OidcTestProvider;
  let dns: TestDnsServer;

  beforeAll(async () => {
    [tdb, platformOp, orgOp, dns] = await Promise.all([
      kind.create(),
      startOidcProvider({ clients: [{ ...PLATFORM, redirectUris: [CALLBACK] }] }),
      startOidcProvider({ clients: [{ ...ORG, redirectUris: [CALLBACK] }] }),
      startDnsServer(),
    ]);
    app = await createTestApp(tdb.db, {
      OIDC_ALLOW_INSECURE: 'true',
      PUBLIC_URL,
      OIDC_PROVIDERS: JSON.stringify([{ id: 'acme-idp', issuer: platformOp.issuer, ...PLATFORM, name: 'Acme IdP' }]),
      DNS_SERVERS: dns.address,
    });
  });
  afterAll(async () => {
    await app?.close();
    await Promise.all([tdb?.drop(), platformOp?.close(), orgOp?.close(), dns?.close()]);
  });

  // --- helpers ------------------------------------------------------------------------------

  /** An account at a provider; returns its `sub`. */
  const account = (op: OidcTestProvider, email: string, extra: Omit<OidcAccount, 'email'> = {}) => {
    const sub = `sub-${uniq()}`;
    op.setAccount(sub, { email, ...extra });
    return sub;
  };

  /** GET an authorize route: the provider URL and the state cookie. */
  async function authorize(path: string) {
    const res = await app.inject({ method: 'GET', url: path });
    expect(res.statusCode, res.body).toBe(302);
    const cookie = res.cookies.find((c) => c.name === STATE_COOKIE);
    expect(cookie, 'the state cookie').toBeDefined();
    return { res, location: new URL(String(res.headers.location)), state: cookie!.value, cookie: cookie! };
  }

  /** The browser coming back from the provider to the callback, with (or without) the state cookie. */
  const callback = (back: URL | string, stateCookie?: string) =>
    app.inject({
      method: 'GET',
      url: `/api/v1/auth/oidc/callback${typeof back === 'string' ? back : back.search}`,
      ...(stateCookie === undefined ? {} : { cookies: { [STATE_COOKIE]: stateCookie } }),
    });

  /** Authorize, sign in at the provider as `sub`, and come back: the redirect and the state cookie. */
  async function throughProvider(op: OidcTestProvider, path: string, sub: string) {
    const started = await authorize(path);
    const back = await op.signIn(started.location.href, sub);
    expect(`${back.origin}${back.pathname}`).toBe(CALLBACK);
    return { back, state: started.state };
  }

  async function signIn(op: OidcTestProvider, path: string, sub: string) {
    const { back, state } = await throughProvider(op, path, sub);
    return callback(back, state);
  }
  const platformSignIn = (sub: string, query = '') => signIn(platformOp, `${PLATFORM_AUTHORIZE}${query}`, sub);
  const orgSignIn = (slug: string, sub: string) => signIn(orgOp, `/api/v1/auth/sso/${slug}/authorize`, sub);

  const login = (email: string, password: string) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
  const refresh = (refreshToken: string) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });
  const me = (accessToken: string) =>
    app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${accessToken}` } });

  async function auditOf(tenant: TestTenant, action: string): Promise<AuditEntry[]> {
    const res = await app.inject({
      method: 'GET',
      url: `/api/v1/audit-log?limit=100&action=${action}`,
      headers: tenant.as(tenant.owner),
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as AuditEntry[];
  }

  async function userRow(email: string) {
    const { rows } = await tdb.db.query('select id, password_hash, email_verified_at from users where email = $1', [
      email.toLowerCase(),
    ]);
    return rows[0] as { id: string; password_hash: string | null; email_verified_at: Date | null } | undefined;
  }

  // --- starting a sign-in -------------------------------------------------------------------

  describe('authorize', () => {
    it('redirects to the provider with PKCE (S256), state and nonce, and binds the state to a cookie', async () => {
      const { res, location, state, cookie } = await authorize(PLATFORM_AUTHORIZE);
      expect(location.origin).toBe(platformOp.issuer);
      const q = location.searchParams;
      expect(q.get('response_type')).toBe('code');
      expect(q.get('client_id')).toBe(PLATFORM.clientId);
      expect(q.get('redirect_uri')).toBe(CALLBACK);
      expect(q.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email']));
      expect(q.get('code_challenge_method')).toBe('S256');
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      expect(state).toBe(q.get('state'));
      // The secret and the verifier stay on the server.
      expect(location.href).not.toContain(PLATFORM.clientSecret);
      expect(q.has('code_verifier')).toBe(false);
      expect(res.body).toBe('');
      // The state cookie: httpOnly, Secure, Lax (the provider's redirect back is cross-site), short-lived.
      expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', maxAge: 600 });
      expect(CALLBACK.slice(PUBLIC_URL.length).startsWith(cookie.path ?? '/')).toBe(true);

      // Every sign-in gets its own state, nonce and verifier.
      const again = (await authorize(PLATFORM_AUTHORIZE)).location.searchParams;
      for (const p of ['state', 'nonce', 'code_challenge']) expect(again.get(p)).not.toBe(q.get(p));
    });

    it('lists the platform providers, without secrets', async () => {
      const res = await app.inject({ method: 'GET', url: '/api/v1/auth/oidc/providers' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ data: [{ id: 'acme-idp', name: 'Acme IdP' }] });
      expect(res.body).not.toContain(PLATFORM.clientSecret);
      expect(res.body).not.toContain(PLATFORM.clientId);
    });

    it('answers 404 for an unknown provider, an unknown organization, or one without single sign-on', async () => {
      expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/oidc/nope/authorize' }), 404, 'not_found');
      expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/sso/no-such-org/authorize' }), 404, 'not_found');
      const plain = await createTenant(app);
      const res = await app.inject({ method: 'GET', url: `/api/v1/auth/sso/${plain.slug}/authorize` });
      expectError(res, 404, 'not_found');
      expect(res.cookies.find((c) => c.name === STATE_COOKIE)).toBeUndefined();
      expectError(await app.inject({ method: 'GET', url: '/api/v1/auth/oidc/Not_An_Id/authorize' }), 400);
      expectError(await app.inject({ method: 'GET', url: `${PLATFORM_AUTHORIZE}?mode=sideways` }), 400);
    });
  });

  // --- platform provider --------------------------------------------------------------------

  describe('platform provider', () => {
    it('creates a verified account with no password at the first sign-in, and reuses it at the next', async () => {
      const email = `Ada.${uniq()}@Example.test`;
      const sub = account(platformOp, email, { name: 'Ada Lovelace' });
      const res = await platformSignIn(sub);
      const first = sessionOf(res);
      expect(first.user).toEqual({ id: expect.any(String), email: email.toLowerCase(), name: 'Ada Lovelace' });
      expect(first).toMatchObject({ tokenType: 'Bearer', refreshToken: expect.any(String) });
      expect(first).not.toHaveProperty('csrfToken');
      const claims = claimsOf(first.accessToken);
      expect(claims.sub).toBe(first.user.id);
      expect(claims.amr).toEqual(['sso']);
      expect(claims).not.toHaveProperty('tid');
      // The state cookie is spent: the callback clears it.
      const cleared = res.cookies.find((c) => c.name === STATE_COOKIE);
      expect(cleared?.value ?? '').toBe('');
      expect(cleared?.expires && cleared.expires.getTime() <= Date.now()).toBeTruthy();

      const row = await userRow(email);
      expect(row).toMatchObject({ id: first.user.id, password_hash: null, email_verified_at: expect.any(Date) });
      const profile = await me(first.accessToken);
      expect(profile.statusCode, profile.body).toBe(200);
      expect(profile.json().data.user).toMatchObject({ id: first.user.id, emailVerified: true });
      // No password: password sign-in cannot get in, whatever is tried.
      expectError(await login(email, PASSWORD), 401, 'invalid_credentials');
      expectError(await login(email, ''), 400);
      // The refresh token works.
      expect((await refresh(first.refreshToken!)).statusCode).toBe(200);

      const second = sessionOf(await platformSignIn(sub));
      expect(second.user.id).toBe(first.user.id);
      expect(second.accessToken).not.toBe(first.accessToken);
      const { rows } = await tdb.db.query('select provider, subject from user_identities where user_id = $1', [
        first.user.id,
      ]);
      expect(rows).toEqual([{ provider: 'acme-idp', subject: sub }]);
    });

    it("links an existing verified account by email (same user id, password kept); identity.linked in the person's tenants", async () => {
      const user = await createUser(app);
      const tenant = await createTenant(app);
      const added = await app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${tenant.id}/members`,
        headers: tenant.owner.auth,
        payload: { email: user.email, role: 'author' },
      });
      expect(added.statusCode, added.body).toBe(201);

      const sub = account(platformOp, user.email.toUpperCase());
      const linked = sessionOf(await platformSignIn(sub));
      expect(linked.user.id).toBe(user.id);
      expect(claimsOf(linked.accessToken).amr).toEqual(['sso']);
      // A verified account keeps its password and its sessions.
      expect((await login(user.email, PASSWORD)).statusCode).toBe(200);
      expect((await refresh(user.refreshToken)).statusCode).toBe(200);

      const entries = (await auditOf(tenant, 'identity.linked')).filter((e) => e.actorUserId === user.id);
      expect(entries).toEqual([expect.objectContaining({ details: { provider: 'acme-idp' } })]);
      // Linked once: the next sign-in is no new link.
      expect(sessionOf(await platformSignIn(sub)).user.id).toBe(user.id);
      expect((await auditOf(tenant, 'identity.linked')).filter((e) => e.actorUserId === user.id)).toHaveLength(1);
      // Not visible in a tenant the person is not in.
      const elsewhere = await createTenant(app);
      expect((await auditOf(elsewhere, 'identity.linked')).filter((e) => e.actorUserId === user.id)).toEqual([]);
    });

    it('takes an unverified pre-registered account from whoever registered it: the old password and sessions stop working', async () => {
      const email = `victim-${uniq()}@example.test`;
      const squatter = await createUser(app, { email, verified: false });
      expect((await userRow(email))?.email_verified_at).toBeNull();

      const owner = sessionOf(await platformSignIn(account(platformOp, email)));
      expect(owner.user.id).toBe(squatter.id);
      expectError(await login(email, PASSWORD), 401, 'invalid_credentials');
      expectError(await refresh(squatter.refreshToken), 401, 'invalid_refresh_token');
      expect(await userRow(email)).toMatchObject({ password_hash: null, email_verified_at: expect.any(Date) });
      // The provider's owner keeps working sessions.
      expect((await refresh(owner.refreshToken!)).statusCode).toBe(200);
      expect((await me(owner.accessToken)).json().data.user.emailVerified).toBe(true);
    });

    // Regression: the takeover once kept the pre-registrant's second factor, locking the owner out.
    it('the takeover also drops a second factor the pre-registrant enrolled', async () => {
      const email = `victim-${uniq()}@example.test`;
      const squatter = await createUser(app, { email, verified: false });
      await enableTotp(app, { auth: { authorization: `Bearer ${squatter.accessToken}` } });

      const res = await platformSignIn(account(platformOp, email));
      const owner = sessionOf(res);
      expect(owner.user.id).toBe(squatter.id);
    });

    it('refuses an identity whose email the provider does not vouch for (403 oidc_email_unverified)', async () => {
      const email = `unverified-${uniq()}@example.test`;
      const res = await platformSignIn(account(platformOp, email, { emailVerified: false }));
      expectError(res, 403, 'oidc_email_unverified');
      expect(await userRow(email)).toBeUndefined();

      // Nor is an existing account linked by an unvouched address.
      const existing = await createUser(app);
      expectError(
        await platformSignIn(account(platformOp, existing.email, { emailVerified: false })),
        403,
        'oidc_email_unverified',
      );
      const { rows } = await tdb.db.query('select 1 from user_identities where user_id = $1', [existing.id]);
      expect(rows).toEqual([]);
    });
  });

  // --- the callback's checks ----------------------------------------------------------------

  describe('callback checks', () => {
    it('refuses a callback without the state cookie, or with another sign-in’s (400 oidc_state_invalid)', async () => {
      const sub = account(platformOp, `csrf-${uniq()}@example.test`);
      const a = await throughProvider(platformOp, PLATFORM_AUTHORIZE, sub);
      expectError(await callback(a.back), 400, 'oidc_state_invalid');

      const b = await throughProvider(platformOp, PLATFORM_AUTHORIZE, sub);
      const c = await throughProvider(platformOp, PLATFORM_AUTHORIZE, sub);
      // The victim's browser holds c's cookie; the attacker's link carries b's code and state (login CSRF).
      expectError(await callback(b.back, c.state), 400, 'oidc_state_invalid');
      expectError(await callback(b.back, ''), 400, 'oidc_state_invalid');
      // A state the server never issued, even with a matching cookie.
      const forged = new URL(c.back);
      forged.searchParams.set('state', 'forged-state-value-0123456789');
      expectError(await callback(forged, 'forged-state-value-0123456789'), 400, 'oidc_state_invalid');
      // The rightful browser completes its own sign-in.
      sessionOf(await callback(c.back, c.state));
      // No query at all.
      expectError(await callback('', c.state), 400, 'oidc_state_invalid');
    });

    it('refuses a replayed callback (the state is single-use)', async () => {
      const { back, state } = await throughProvider(
        platformOp,
        PLATFORM_AUTHORIZE,
        account(platformOp, `replay-${uniq()}@example.test`),
      );
      sessionOf(await callback(back, state));
      expectError(await callback(back, state), 400, 'oidc_state_invalid');
    });

    it('refuses a tampered code (401 oidc_failed), and the state is spent with it', async () => {
      const { back, state } = await throughProvider(
        platformOp,
        PLATFORM_AUTHORIZE,
        account(platformOp, `tamper-${uniq()}@example.test`),
      );
      const tampered = new URL(back);
      tampered.searchParams.set('code', `${back.searchParams.get('code')}x`);
      expectError(await callback(tampered, state), 401, 'oidc_failed');
      expectError(await callback(back, state), 400, 'oidc_state_invalid');
    });

    it('refuses a code issued for another sign-in (its PKCE verifier and nonce do not match)', async () => {
      const sub = account(platformOp, `swap-${uniq()}@example.test`);
      const a = await throughProvider(platformOp, PLATFORM_AUTHORIZE, sub);
      const b = await throughProvider(platformOp, PLATFORM_AUTHORIZE, sub);
      const swapped = new URL(b.back);
      swapped.searchParams.set('code', a.back.searchParams.get('code')!);
      expectError(await callback(swapped, b.state), 401, 'oidc_failed');
    });

    it('answers 401 when the provider did not sign the person in (error=access_denied)', async () => {
      const { back, state } = await throughProvider(platformOp, PLATFORM_AUTHORIZE, 'no-such-account');
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.has('code')).toBe(false);
      expectError(await callback(back, state), 401, 'oidc_failed');
    });
  });

  // --- cookie mode and the second factor ----------------------------------------------------

  it('cookie mode: the callback sets the refresh cookie and returns a CSRF token, no refresh token', async () => {
    const res = await platformSignIn(account(platformOp, `cookie-${uniq()}@example.test`), '?mode=cookie');
    const data = sessionOf(res);
    expect(data).not.toHaveProperty('refreshToken');
    expect(data.csrfToken).toEqual(expect.any(String));
    expect(claimsOf(data.accessToken).amr).toEqual(['sso']);
    const refreshCookie = res.cookies.find((c) => c.name === 'quire_refresh');
    const csrfCookie = res.cookies.find((c) => c.name === 'quire_csrf');
    expect(refreshCookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/api/v1/auth' });
    expect(csrfCookie).toBeDefined();

    // The cookie is a working refresh token (with the CSRF token).
    const refreshed = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      cookies: { quire_refresh: refreshCookie!.value, quire_csrf: csrfCookie!.value },
      headers: { 'x-csrf-token': data.csrfToken! },
    });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    expect(refreshed.json().data).not.toHaveProperty('refreshToken');
  });

  it('an account with TOTP gets a second-factor challenge, not tokens; completing it gives amr sso+otp', async () => {
    const sub = account(platformOp, `mfa-${uniq()}@example.test`);
    const first = sessionOf(await platformSignIn(sub));
    // No password on an account made by a provider: enrolment needs none.
    const totp = await enableTotp(app, { auth: { authorization: `Bearer ${first.accessToken}` } }, undefined);

    const res = await platformSignIn(sub);
    expect(res.statusCode, res.body).toBe(200);
    const challenge = res.json().data as Challenge;
    expect(challenge).toMatchObject({ mfaRequired: true, mfaToken: expect.any(String) });
    expect(challenge.methods).toContain('totp');
    expect(challenge).not.toHaveProperty('accessToken');
    expect(challenge).not.toHaveProperty('refreshToken');

    const verified = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/verify',
      payload: { mfaToken: challenge.mfaToken, code: await nextCode(totp) },
    });
    const session = sessionOf(verified);
    expect(session.user.id).toBe(first.user.id);
    expect(claimsOf(session.accessToken).amr).toEqual(['sso', 'otp']);
  });

  // --- an organization's own identity provider ----------------------------------------------

  describe('organization single sign-on', () => {
    let org: TestTenant;
    let rival: TestTenant;
    let admin: TestUser;
    let author: TestUser;
    const sso = (tenant: TestTenant, user: TestUser, method: 'GET' | 'PUT' | 'DELETE' = 'GET', payload?: object) =>
      app.inject({
        method,
        url: `/api/v1/tenants/${tenant.id}/sso`,
        headers: user.auth,
        ...(payload ? { payload } : {}),
      });
    const orgConfig = (over: Record<string, unknown> = {}) => ({
      issuer: orgOp.issuer,
      clientId: ORG.clientId,
      clientSecret: ORG.clientSecret,
      defaultRole: 'author',
      ...over,
    });
    const addDomain = (tenant: TestTenant, domain: string) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${tenant.id}/sso/domains`,
        headers: tenant.owner.auth,
        payload: { domain },
      });
    const verifyDomain = (tenant: TestTenant, domain: string) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${tenant.id}/sso/domains/${domain}/verify`,
        headers: tenant.owner.auth,
      });

    beforeAll(async () => {
      org = await createTenant(app);
      rival = await createTenant(app);
      admin = await createMember(app, org, 'admin');
      author = await createMember(app, org, 'author');
    });

    it('an owner sets the identity provider (discovery probed); the secret is sealed and never shown', async () => {
      const res = await sso(org, org.owner, 'PUT', orgConfig());
      expect(res.statusCode, res.body).toBe(200);
      const expected = {
        configured: true,
        issuer: orgOp.issuer,
        clientId: ORG.clientId,
        enforced: false,
        defaultRole: 'author',
        redirectUri: CALLBACK,
        domains: [],
      };
      expect(res.json()).toEqual({ data: expected });
      expect(res.body).not.toContain(ORG.clientSecret);

      const got = await sso(org, org.owner);
      expect(got.statusCode, got.body).toBe(200);
      expect(got.json()).toEqual({ data: expected });
      expect(got.body).not.toContain(ORG.clientSecret);

      const { rows } = await tdb.db.query('select client_secret from tenant_sso where tenant_id = $1', [org.id]);
      const stored = String(rows[0]?.client_secret);
      expect(stored).toMatch(/^v2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expect(stored).not.toContain(ORG.clientSecret);

      // Saved again without the secret: the sealed one is kept (and still opens).
      const { clientSecret: _omitted, ...withoutSecret } = orgConfig();
      expect((await sso(org, org.owner, 'PUT', withoutSecret)).statusCode).toBe(200);
      // A first configuration needs a secret.
      expectError(await sso(rival, rival.owner, 'PUT', withoutSecret), 400, 'validation_failed');
    });

    it('only owners see or change it (admin, author: 403; no token: 401)', async () => {
      for (const user of [admin, author]) {
        expectError(await sso(org, user), 403);
        expectError(await sso(org, user, 'PUT', orgConfig({ issuer: 'http://127.0.0.1:1' })), 403);
        expectError(
          await app.inject({
            method: 'POST',
            url: `/api/v1/tenants/${org.id}/sso/domains`,
            headers: user.auth,
            payload: { domain: 'evil.test' },
          }),
          403,
        );
      }
      // The owner of another organization neither (not a member: the organization is not found).
      expectError(await sso(org, rival.owner), 404, 'not_found');
      expectError(await app.inject({ method: 'GET', url: `/api/v1/tenants/${org.id}/sso` }), 401);
      expect((await sso(org, org.owner)).json().data.issuer).toBe(orgOp.issuer);
    });

    it('refuses an issuer that does not answer discovery (400 oidc_discovery_failed), and an owner as default role', async () => {
      expectError(
        await sso(org, org.owner, 'PUT', orgConfig({ issuer: 'http://127.0.0.1:1' })),
        400,
        'oidc_discovery_failed',
      );
      expectError(
        await sso(org, org.owner, 'PUT', orgConfig({ issuer: `${platformOp.issuer}/not-an-issuer` })),
        400,
        'oidc_discovery_failed',
      );
      expectError(await sso(org, org.owner, 'PUT', orgConfig({ defaultRole: 'owner' })), 400, 'validation_failed');
      expectError(await sso(org, org.owner, 'PUT', orgConfig({ issuer: 'ftp://example.test/' })), 400);
      // Nothing changed.
      expect((await sso(org, org.owner)).json().data).toMatchObject({ issuer: orgOp.issuer, defaultRole: 'author' });
    });

    it('refuses enforcement before a domain is verified (422 no_verified_domain)', async () => {
      expectError(await sso(org, org.owner, 'PUT', orgConfig({ enforced: true })), 422, 'no_verified_domain');
      expect((await sso(org, org.owner)).json().data.enforced).toBe(false);
    });

    it('verifies an email domain by its DNS TXT record; one organization per domain', async () => {
      const added = await addDomain(org, 'ACME.test');
      expect(added.statusCode, added.body).toBe(201);
      const domain = added.json().data;
      expect(domain).toEqual({
        domain: 'acme.test',
        verified: false,
        verifiedAt: null,
        txtRecordName: '_quire-verification.acme.test',
        txtRecordValue: expect.stringMatching(/^quire-verification=[0-9a-f]{32}$/),
      });
      expectError(await addDomain(org, 'acme.test'), 409, 'domain_exists');
      expectError(await addDomain(org, 'not a domain'), 400, 'validation_failed');

      // No record yet: the app asked our DNS server, and found nothing.
      const asked = dns.queries.length;
      expectError(await verifyDomain(org, 'acme.test'), 422, 'domain_not_verified');
      expect(dns.queries.slice(asked)).toContain('_quire-verification.acme.test');
      // A record with another value does not count.
      dns.publishTxt(domain.txtRecordName, 'quire-verification=0123456789abcdef0123456789abcdef');
      expectError(await verifyDomain(org, 'acme.test'), 422, 'domain_not_verified');

      dns.publishTxt(domain.txtRecordName, domain.txtRecordValue);
      const verified = await verifyDomain(org, 'acme.test');
      expect(verified.statusCode, verified.body).toBe(200);
      expect(verified.json().data).toMatchObject({
        domain: 'acme.test',
        verified: true,
        verifiedAt: expect.any(String),
      });
      expect((await verifyDomain(org, 'acme.test')).statusCode).toBe(200);
      expect((await sso(org, org.owner)).json().data.domains).toEqual([
        expect.objectContaining({ domain: 'acme.test', verified: true }),
      ]);
      expectError(await verifyDomain(org, 'unlisted.test'), 404, 'not_found');
    });

    // Regression: the unique violation once escaped as a 500 (drizzle wraps the driver's error).
    it('another organization cannot verify a domain already verified (409 domain_taken), even with its own record', async () => {
      const added = await addDomain(rival, 'acme.test');
      expect(added.statusCode, added.body).toBe(201);
      dns.publishTxt(added.json().data.txtRecordName, added.json().data.txtRecordValue);
      expectError(await verifyDomain(rival, 'acme.test'), 409, 'domain_taken');
      const { rows } = await tdb.db.query(
        'select tenant_id from tenant_domains where domain = $1 and verified_at is not null',
        ['acme.test'],
      );
      expect(rows).toEqual([{ tenant_id: org.id }]);
    });

    it('a person of a verified domain signs in through it: session bound to the organization, member by default role', async () => {
      const email = `someone-${uniq()}@acme.test`;
      const session = sessionOf(await orgSignIn(org.slug, account(orgOp, email, { name: 'Some One' })));
      expect(session.user).toMatchObject({ email, name: 'Some One' });
      const claims = claimsOf(session.accessToken);
      expect(claims.tid).toBe(org.id);
      expect(claims.amr).toEqual(['sso']);

      const members = await app.inject({
        method: 'GET',
        url: `/api/v1/tenants/${org.id}/members`,
        headers: org.owner.auth,
      });
      expect(members.statusCode, members.body).toBe(200);
      expect(members.json().data).toContainEqual(expect.objectContaining({ userId: session.user.id, role: 'author' }));
      expect((await userRow(email))?.email_verified_at).toEqual(expect.any(Date));
      // Joining by default role is in the organization's log.
      expect(await auditOf(org, 'member.provisioned')).toContainEqual(
        expect.objectContaining({ actorUserId: session.user.id, details: { role: 'author', via: 'sso' } }),
      );
      // The token works in the organization.
      const profile = await me(session.accessToken);
      expect(profile.json().data.memberships).toContainEqual(
        expect.objectContaining({ tenantId: org.id, role: 'author' }),
      );
    });

    it('refuses a person of another domain through the organization’s provider (403 sso_domain_mismatch, audited)', async () => {
      const email = `x-${uniq()}@other.test`;
      expectError(await orgSignIn(org.slug, account(orgOp, email)), 403, 'sso_domain_mismatch');
      expect(await userRow(email)).toBeUndefined();
      const refused = await auditOf(org, 'sso.login_refused');
      expect(refused).toContainEqual(
        expect.objectContaining({ actorUserId: null, details: expect.objectContaining({ email }) }),
      );
    });

    it('enforcement: people of the domain sign in only through the organization’s provider', async () => {
      const carol = await createUser(app, { email: `carol-${uniq()}@acme.test` });
      const before = sessionOf(await platformSignIn(account(platformOp, `dave-${uniq()}@acme.test`)));
      expect(before.user.email).toMatch(/@acme\.test$/);
      const viaOrg = sessionOf(await orgSignIn(org.slug, account(orgOp, carol.email)));
      expect(viaOrg.user.id).toBe(carol.id);

      const { clientSecret: _kept, ...config } = orgConfig({ enforced: true });
      const res = await sso(org, org.owner, 'PUT', config);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().data.enforced).toBe(true);

      // Sessions already open end unless they came through the organization's provider (the
      // refresh tokens end now; an access token runs out within 15 minutes).
      expectError(await refresh(carol.refreshToken), 401, 'invalid_refresh_token');
      expectError(await refresh(before.refreshToken!), 401, 'invalid_refresh_token');
      expect((await refresh(viaOrg.refreshToken!)).statusCode).toBe(200);
      // A session the revocation missed (a crash right after the change committed): refresh
      // checks enforcement too, answers as sign-in does, and ends it.
      await tdb.db.query(
        'update refresh_tokens set revoked_at = null where user_id = $1 and tenant_id is null and rotated_at is null',
        [carol.id],
      );
      const refused = expectError(await refresh(carol.refreshToken), 403, 'sso_required');
      expect(refused.details).toMatchObject({ tenantSlug: org.slug });
      expectError(await refresh(carol.refreshToken), 401, 'invalid_refresh_token');
      const revoked = await auditOf(org, 'sessions.revoked');
      expect(revoked).toEqual([
        expect.objectContaining({
          actorUserId: org.owner.id,
          details: expect.objectContaining({ reason: 'sso_enforced' }),
        }),
      ]);
      expect(revoked[0]!.details.people).toBeGreaterThanOrEqual(2);

      // Password sign-in: refused before the password is even looked at.
      for (const [email, password] of [
        [carol.email, PASSWORD],
        [carol.email, 'wrong password'],
        [carol.email.toUpperCase(), PASSWORD],
      ] as const) {
        const error = expectError(await login(email, password), 403, 'sso_required');
        expect(error.details).toMatchObject({
          tenantSlug: org.slug,
          authorizeUrl: `/api/v1/auth/sso/${org.slug}/authorize`,
        });
      }
      // The platform provider: refused for the domain, new person or already linked.
      const dave = account(platformOp, `dave-${uniq()}@acme.test`);
      const error = expectError(await platformSignIn(dave), 403, 'sso_required');
      expect(error.details).toMatchObject({ tenantSlug: org.slug });
      // The organization's provider: carol's account, linked by her verified email.
      const through = sessionOf(await orgSignIn(org.slug, account(orgOp, carol.email)));
      expect(through.user.id).toBe(carol.id);
      expect(claimsOf(through.accessToken).tid).toBe(org.id);
      // People of other domains are not concerned.
      expect((await login(org.owner.email, PASSWORD)).statusCode).toBe(200);

      const configured = await auditOf(org, 'sso.configured');
      expect(configured.length).toBeGreaterThanOrEqual(2);
      expect(configured[0]).toMatchObject({
        actorUserId: org.owner.id,
        details: { issuer: orgOp.issuer, clientId: ORG.clientId, defaultRole: 'author' },
      });
      expect(JSON.stringify(configured)).not.toContain(ORG.clientSecret);
      expect(await auditOf(org, 'sso.enforcement_changed')).toEqual([
        expect.objectContaining({ actorUserId: org.owner.id, details: { enforced: true } }),
      ]);
      expect(await auditOf(org, 'sso.domain_added')).toEqual([
        expect.objectContaining({ actorUserId: org.owner.id, details: { domain: 'acme.test' } }),
      ]);
      expect(await auditOf(org, 'sso.domain_verified')).toEqual([
        expect.objectContaining({ actorUserId: org.owner.id, details: { domain: 'acme.test' } }),
      ]);
      // The rival's failed attempt left nothing in its log.
      expect(await auditOf(rival, 'sso.domain_verified')).toEqual([]);
    });

    // Regression: enforcement once looked only at the address the provider asserted now.
    it('enforcement also covers an account linked to a platform identity whose email changed since', async () => {
      // Enforcement is on (previous test); link erin's platform identity first, with enforcement off.
      const { clientSecret: _kept, ...config } = orgConfig();
      expect((await sso(org, org.owner, 'PUT', { ...config, enforced: false })).statusCode).toBe(200);
      const email = `erin-${uniq()}@acme.test`;
      const sub = account(platformOp, email);
      const linked = sessionOf(await platformSignIn(sub));
      expect((await sso(org, org.owner, 'PUT', { ...config, enforced: true })).statusCode).toBe(200);
      expectError(await platformSignIn(sub), 403, 'sso_required');

      platformOp.setAccount(sub, { email: `erin-${uniq()}@personal.test` });
      const res = await platformSignIn(sub);
      // Today: 200, a session for the enforced account.
      expect(res.statusCode === 200 ? res.json().data.user.id : null).not.toBe(linked.user.id);
      expectError(res, 403, 'sso_required');
    });

    it('verifying another domain while enforcement is on ends the password sessions of its people too', async () => {
      const hal = await createUser(app, { email: `hal-${uniq()}@acme-labs.test` });
      const other = await createUser(app, { email: `ida-${uniq()}@elsewhere.test` });
      const added = await addDomain(org, 'acme-labs.test');
      expect(added.statusCode, added.body).toBe(201);
      dns.publishTxt(added.json().data.txtRecordName, added.json().data.txtRecordValue);
      const verified = await verifyDomain(org, 'acme-labs.test');
      expect(verified.statusCode, verified.body).toBe(200);

      expectError(await refresh(hal.refreshToken), 401, 'invalid_refresh_token');
      expectError(await login(hal.email, PASSWORD), 403, 'sso_required');
      expect((await refresh(other.refreshToken)).statusCode).toBe(200);
      expect(await auditOf(org, 'sessions.revoked')).toContainEqual(
        expect.objectContaining({
          actorUserId: org.owner.id,
          details: { reason: 'sso_enforced', people: 1, sessions: 1, domain: 'acme-labs.test' },
        }),
      );
    });

    it('break glass: owners of the organization with a second factor stay exempt from enforcement; owners without one do not', async () => {
      const { clientSecret: _kept, ...config } = orgConfig();
      expect((await sso(org, org.owner, 'PUT', { ...config, enforced: false })).statusCode).toBe(200);
      const olga = await createUser(app, { email: `olga-${uniq()}@acme.test` });
      const pete = await createUser(app, { email: `pete-${uniq()}@acme.test` });
      for (const u of [olga, pete]) {
        const added = await app.inject({
          method: 'POST',
          url: `/api/v1/tenants/${org.id}/members`,
          headers: org.owner.auth,
          payload: { email: u.email, role: 'owner' },
        });
        expect(added.statusCode, added.body).toBe(201);
      }
      const a = await enableTotp(app, olga);
      expect((await sso(org, org.owner, 'PUT', { ...config, enforced: true })).statusCode).toBe(200);

      // Olga (owner, TOTP on): her session lives on, and she signs in with her password and a code.
      expect((await refresh(olga.refreshToken)).statusCode).toBe(200);
      const challenged = await login(olga.email, PASSWORD);
      expect(challenged.statusCode, challenged.body).toBe(200);
      expect(challenged.json().data.mfaRequired).toBe(true);
      const verified = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/mfa/verify',
        payload: { mfaToken: challenged.json().data.mfaToken, code: await nextCode(a) },
      });
      expect(sessionOf(verified).user.id).toBe(olga.id);
      // Pete (owner, no second factor): ended, and refused like everyone else of the domain.
      expectError(await refresh(pete.refreshToken), 401, 'invalid_refresh_token');
      expectError(await login(pete.email, PASSWORD), 403, 'sso_required');
    });

    it('without enforcement, password sign-in works again; no default role, no membership; removing the provider ends its sign-ins', async () => {
      const email = `frank-${uniq()}@acme.test`;
      const { clientSecret: _kept, ...config } = orgConfig();
      expect((await sso(org, org.owner, 'PUT', { ...config, enforced: false })).statusCode).toBe(200);
      const frank = await createUser(app, { email });
      expect((await login(frank.email, PASSWORD)).statusCode).toBe(200);
      expect((await auditOf(org, 'sso.enforcement_changed'))[0]?.details).toEqual({ enforced: false });

      // No default role: a new person of the domain gets an account, but no membership and no tenant-bound session.
      expect((await sso(org, org.owner, 'PUT', { ...config, defaultRole: null })).statusCode).toBe(200);
      const outsider = sessionOf(await orgSignIn(org.slug, account(orgOp, `gina-${uniq()}@acme.test`)));
      expect(claimsOf(outsider.accessToken)).not.toHaveProperty('tid');
      const members = await app.inject({
        method: 'GET',
        url: `/api/v1/tenants/${org.id}/members`,
        headers: org.owner.auth,
      });
      expect(members.json().data).not.toContainEqual(expect.objectContaining({ userId: outsider.user.id }));
      // An existing member keeps their role and gets a session bound to the organization.
      const added = await app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${org.id}/members`,
        headers: org.owner.auth,
        payload: { email: frank.email, role: 'editor' },
      });
      expect(added.statusCode, added.body).toBe(201);
      const member = sessionOf(await orgSignIn(org.slug, account(orgOp, frank.email)));
      expect(member.user.id).toBe(frank.id);
      expect(claimsOf(member.accessToken).tid).toBe(org.id);
      const after = await app.inject({
        method: 'GET',
        url: `/api/v1/tenants/${org.id}/members`,
        headers: org.owner.auth,
      });
      expect(after.json().data).toContainEqual(expect.objectContaining({ userId: frank.id, role: 'editor' }));

      const removed = await sso(org, org.owner, 'DELETE');
      expect(removed.statusCode, removed.body).toBe(204);
      expect((await sso(org, org.owner)).json().data).toMatchObject({ configured: false, issuer: null });
      expectError(await app.inject({ method: 'GET', url: `/api/v1/auth/sso/${org.slug}/authorize` }), 404, 'not_found');
      expect(await auditOf(org, 'sso.removed')).toHaveLength(1);
    });
  });

  // --- SSRF guard ---------------------------------------------------------------------------

  describe('issuer guard (without OIDC_ALLOW_INSECURE)', () => {
    let secure: FastifyInstance;
    let tenant: TestTenant;

    beforeAll(async () => {
      secure = await createTestApp(tdb.db, { PUBLIC_URL });
      tenant = await createTenant(secure);
    });
    afterAll(async () => {
      await secure?.close();
    });

    it.each([
      'http://127.0.0.1:1/',
      'http://example.test/',
      'https://127.0.0.1/',
      'https://10.0.0.1/',
      'https://172.16.5.4/',
      'https://192.168.1.1/',
      'https://169.254.169.254/',
      'https://100.64.0.1/',
      'https://0.0.0.0/',
      'https://2130706433/',
      'https://[::1]/',
      'https://[::ffff:127.0.0.1]/',
      'https://[fd00::1]/',
      'https://[fe80::1]/',
      'https://localhost/',
      // A name that does not resolve (the .invalid top-level domain never does).
      'https://nonexistent.invalid/',
    ])('refuses %s (400 invalid_issuer)', async (issuer) => {
      const res = await secure.inject({
        method: 'PUT',
        url: `/api/v1/tenants/${tenant.id}/sso`,
        headers: tenant.owner.auth,
        payload: { issuer, clientId: 'c', clientSecret: 's' },
      });
      expectError(res, 400, 'invalid_issuer');
      const got = await secure.inject({
        method: 'GET',
        url: `/api/v1/tenants/${tenant.id}/sso`,
        headers: tenant.owner.auth,
      });
      expect(got.json().data.configured).toBe(false);
    });
  });
});
