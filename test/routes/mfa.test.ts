import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createTenant, createUser, PASSWORD, type TestUser } from '../helpers/factories.js';
import { claimsOf } from '../helpers/jwt.js';
import { type Authenticator, authenticator, codeAt, currentStep, nextCode, wrongCode } from '../helpers/totp.js';

/**
 * Two-factor authentication (TOTP, RFC 6238) end to end over the HTTP API: enrolment and
 * confirmation, recovery codes, sign-in challenges, disabling, regenerating, and the tenant
 * policy that requires a second factor of staff. Codes are computed here with `otpauth` from the
 * secret the API hands out, as an authenticator app would.
 */
const RECOVERY_CODE = /^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/;

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` });

type Session = { accessToken: string; refreshToken?: string; csrfToken?: string; user: { id: string } };

describe.each(databaseKinds)('two-factor authentication on $name', (kind) => {
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

  // --- requests -------------------------------------------------------------------------------

  const post = (url: string, payload?: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/api/v1${url}`, payload, headers });
  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: `/api/v1${url}`, headers });
  const put = (url: string, payload: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'PUT', url: `/api/v1${url}`, payload, headers });

  const login = (email: string, extra: Record<string, unknown> = {}) =>
    post('/auth/login', { email, password: PASSWORD, ...extra });
  const verify = (payload: Record<string, unknown>) => post('/auth/mfa/verify', payload);

  const status = async (user: { auth: Record<string, string> }) => {
    const res = await get('/auth/mfa', user.auth);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as {
      enabled: boolean;
      enabledAt: string | null;
      pending: boolean;
      recoveryCodesRemaining: number;
    };
  };

  const enroll = async (user: TestUser) => {
    const res = await post('/auth/mfa/totp/enroll', { password: PASSWORD }, user.auth);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as { secret: string; otpauthUri: string };
  };

  /** Enrols and confirms: TOTP is on. The authenticator and the ten recovery codes. */
  const enable = async (user: TestUser) => {
    const a = authenticator((await enroll(user)).secret);
    const res = await post('/auth/mfa/totp/confirm', { code: await nextCode(a) }, user.auth);
    expect(res.statusCode, res.body).toBe(200);
    return { a, recoveryCodes: res.json().data.recoveryCodes as string[] };
  };

  /** Signs in with the password and expects a challenge; its token. */
  const challenge = async (email: string, extra: Record<string, unknown> = {}) => {
    const res = await login(email, extra);
    expect(res.statusCode, res.body).toBe(200);
    const d = res.json().data;
    expect(d).toEqual({
      mfaRequired: true,
      mfaToken: expect.any(String),
      methods: ['totp', 'recovery_code'],
      expiresIn: 300,
    });
    return d.mfaToken as string;
  };

  const expectSession = (res: LightMyRequestResponse) => {
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as Session;
  };

  /** A full sign-in with the next TOTP code: the session and its headers. */
  const signInWithCode = async (user: TestUser, a: Authenticator, extra: Record<string, unknown> = {}) => {
    const mfaToken = await challenge(user.email, extra);
    const s = expectSession(await verify({ mfaToken, code: await nextCode(a) }));
    return { ...s, auth: bearer(s.accessToken) };
  };

  /** The audit entries with `action` of a tenant, as read by `headers` (an owner's). */
  const audit = async (headers: Record<string, string>, action: string) => {
    const res = await get(`/audit-log?action=${action}&limit=100`, headers);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as Array<{ action: string; actorUserId: string | null; details: Record<string, unknown> }>;
  };

  const row = async (text: string, values: unknown[]) => (await tdb.db.query(text, values)).rows;

  // --- enrolment ------------------------------------------------------------------------------

  it('enrolment needs the password, returns a base32 secret and its otpauth:// URI, and changes nothing for sign-in until confirmed', async () => {
    const u = await createUser(app);
    expect(await status(u)).toEqual({ enabled: false, enabledAt: null, pending: false, recoveryCodesRemaining: 0 });
    expectError(await get('/auth/mfa'), 401);
    expectError(await post('/auth/mfa/totp/enroll', { password: PASSWORD }), 401);

    expectError(await post('/auth/mfa/totp/enroll', { password: 'not the password' }, u.auth), 400, 'wrong_password');
    expectError(await post('/auth/mfa/totp/enroll', {}, u.auth), 400, 'wrong_password');
    expect((await status(u)).pending).toBe(false);

    const first = await enroll(u);
    expect(first.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(first.otpauthUri.startsWith(`otpauth://totp/Quire:${encodeURIComponent(u.email)}?`)).toBe(true);
    const params = new URLSearchParams(first.otpauthUri.split('?')[1]);
    expect(params.get('secret')).toBe(first.secret);
    expect(params.get('issuer')).toBe('Quire');
    expect(params.get('period') ?? '30').toBe('30');
    expect(params.get('digits') ?? '6').toBe('6');
    expect(params.get('algorithm') ?? 'SHA1').toBe('SHA1');
    expect(await status(u)).toEqual({ enabled: false, enabledAt: null, pending: true, recoveryCodesRemaining: 0 });

    // Pending: sign-in still gives tokens, with the password as the only factor.
    const res = await login(u.email);
    const s = expectSession(res);
    expect(res.json().data.mfaRequired).toBeUndefined();
    expect(s.refreshToken).toEqual(expect.any(String));
    expect(claimsOf(s.accessToken).amr).toEqual(['pwd']);

    // Enrolling again replaces the unconfirmed secret: codes of the first one no longer confirm.
    const second = await enroll(u);
    expect(second.secret).not.toBe(first.secret);
    const a2 = authenticator(second.secret);
    const stale = codeAt(authenticator(first.secret), currentStep());
    if (![-1, 0, 1].some((d) => codeAt(a2, currentStep() + d) === stale)) {
      expectError(await post('/auth/mfa/totp/confirm', { code: stale }, u.auth), 401, 'invalid_mfa_code');
    }
    expect((await status(u)).pending).toBe(true);
    expect((await post('/auth/mfa/totp/confirm', { code: await nextCode(a2) }, u.auth)).statusCode).toBe(200);
    expect((await status(u)).enabled).toBe(true);
  });

  it('confirm: a wrong code leaves it off; the right one turns it on with ten single-use recovery codes, stored hashed, the secret sealed', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    expectError(await post('/auth/mfa/totp/confirm', { code: '123456' }, u.auth), 409, 'mfa_not_enrolled');

    const { secret } = await enroll(u);
    const a = authenticator(secret);
    expectError(await post('/auth/mfa/totp/confirm', { code: wrongCode(a) }, u.auth), 401, 'invalid_mfa_code');
    expect(await status(u)).toMatchObject({ enabled: false, pending: true });
    expect(expectSession(await login(u.email)).accessToken).toEqual(expect.any(String));

    const before = Date.now();
    const res = await post('/auth/mfa/totp/confirm', { code: await nextCode(a) }, u.auth);
    expect(res.statusCode, res.body).toBe(200);
    const codes = res.json().data.recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(RECOVERY_CODE);

    const st = await status(u);
    expect(st).toEqual({ enabled: true, enabledAt: expect.any(String), pending: false, recoveryCodesRemaining: 10 });
    expect(Date.parse(st.enabledAt!)).toBeGreaterThanOrEqual(before - 5_000);

    // At rest: ten hashes that contain no code, in any form; the secret sealed (v1.<iv>.<tag>.<ct>).
    const hashes = (await row('select code_hash from recovery_codes where user_id = $1', [u.id])).map((r) =>
      String(r.code_hash),
    );
    expect(hashes).toHaveLength(10);
    for (const h of hashes) {
      for (const c of codes) {
        expect(h).not.toContain(c);
        expect(h).not.toContain(c.replaceAll('-', ''));
        expect(h.toUpperCase()).not.toContain(c.replaceAll('-', ''));
      }
    }
    const [user] = await row('select totp_secret, totp_enabled_at from users where id = $1', [u.id]);
    const sealed = String(user?.totp_secret);
    expect(sealed).toMatch(/^v2\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain(secret);
    expect(user?.totp_enabled_at).not.toBeNull();

    expectError(await post('/auth/mfa/totp/confirm', { code: await nextCode(a) }, u.auth), 409, 'mfa_already_enabled');
    expectError(await post('/auth/mfa/totp/enroll', { password: PASSWORD }, u.auth), 409, 'mfa_already_enabled');

    const enabled = await audit(tenant.as(u), 'mfa.enabled');
    expect(enabled).toHaveLength(1);
    expect(enabled[0]).toMatchObject({ actorUserId: u.id, details: { method: 'totp' } });
  });

  // --- sign-in --------------------------------------------------------------------------------

  it('with TOTP on, sign-in gives a challenge and no tokens; the right code gives an otp session; codes and challenges work once', async () => {
    const u = await createUser(app);
    const { a } = await enable(u);

    const res = await login(u.email);
    expect(res.statusCode, res.body).toBe(200);
    const c = res.json().data;
    expect(Object.keys(c).sort()).toEqual(['expiresIn', 'methods', 'mfaRequired', 'mfaToken']);
    expect(res.body).not.toMatch(/accessToken|refreshToken/);
    expectError(
      await post('/auth/login', { email: u.email, password: 'not the password' }),
      401,
      'invalid_credentials',
    );

    const code = await nextCode(a);
    const s = expectSession(await verify({ mfaToken: c.mfaToken, code }));
    expect(s).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { id: u.id, email: u.email, name: u.name } });
    expect(s.refreshToken).toEqual(expect.any(String));
    const claims = claimsOf(s.accessToken);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.sub).toBe(u.id);
    expect(claims.tid).toBeUndefined();
    const me = await get('/auth/me', bearer(s.accessToken));
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json().data.user.id).toBe(u.id);
    // The session from before TOTP was turned on is still password-only.
    expect(claimsOf(u.accessToken).amr).toEqual(['pwd']);

    // The challenge is used up; the code is too (replayed on a new challenge).
    expectError(await verify({ mfaToken: c.mfaToken, code }), 401, 'mfa_challenge_expired');
    const again = await challenge(u.email);
    expectError(await verify({ mfaToken: again, code }), 401, 'invalid_mfa_code');
    // An unknown token.
    expectError(
      await verify({ mfaToken: randomBytes(32).toString('base64url'), code: '123456' }),
      401,
      'mfa_challenge_expired',
    );

    // Refresh keeps how the session was opened, rotation after rotation.
    let refreshToken = s.refreshToken!;
    for (let i = 0; i < 2; i++) {
      const r = await post('/auth/refresh', { refreshToken });
      expect(r.statusCode, r.body).toBe(200);
      const pair = r.json().data as { accessToken: string; refreshToken: string };
      expect(claimsOf(pair.accessToken).amr).toEqual(['pwd', 'otp']);
      refreshToken = pair.refreshToken;
    }
  });

  it('a code for a step older than the last one accepted is refused, though still inside the window', async () => {
    const u = await createUser(app);
    const a = authenticator((await enroll(u)).secret);
    const next = currentStep() + 1;
    const confirmed = await post('/auth/mfa/totp/confirm', { code: codeAt(a, next) }, u.auth);
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    a.last = next;
    const mfaToken = await challenge(u.email);
    expectError(await verify({ mfaToken, code: codeAt(a, next - 1) }), 401, 'invalid_mfa_code');
    // The challenge is still open (one attempt counted): a recovery code completes it.
    const recovery = confirmed.json().data.recoveryCodes[0] as string;
    expect(claimsOf(expectSession(await verify({ mfaToken, recoveryCode: recovery })).accessToken).amr).toEqual([
      'pwd',
      'otp',
    ]);
  });

  it('sign-in bound to a tenant carries the tenant through the challenge', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { a } = await enable(u);
    const s = await signInWithCode(u, a, { tenantId: tenant.id });
    expect(claimsOf(s.accessToken)).toMatchObject({ sub: u.id, tid: tenant.id, amr: ['pwd', 'otp'] });
    // A tenant the user is not in: refused before any challenge is issued.
    const elsewhere = await createTenant(app);
    expectError(await login(u.email, { tenantId: elsewhere.id }), 404, 'not_found');
    const [n] = await row('select count(*)::int as n from mfa_challenges where user_id = $1', [u.id]);
    expect(n?.n).toBe(1);
  });

  it('five wrong codes void the challenge and lock the account like five wrong passwords; each failure is audited', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { a } = await enable(u);

    const mfaToken = await challenge(u.email);
    for (let i = 0; i < 5; i++) {
      expectError(await verify({ mfaToken, code: wrongCode(a) }), 401, 'invalid_mfa_code');
    }
    const right = await nextCode(a);
    expectError(await verify({ mfaToken, code: right }), 401, 'mfa_challenge_expired');
    const [ch] = await row('select attempts, used_at from mfa_challenges where user_id = $1', [u.id]);
    expect(ch).toMatchObject({ attempts: 5, used_at: null });

    // The account is locked: even the right password is answered as a wrong one, with no challenge.
    expectError(await login(u.email), 401, 'invalid_credentials');
    const locked = await audit(tenant.as(u), 'account.locked');
    expect(locked).toHaveLength(1);
    expect(locked[0]).toMatchObject({ actorUserId: u.id, details: { after: 'mfa' } });

    // When the lock runs out, the refused code (never checked) signs in on a new challenge.
    await tdb.db.query("update users set locked_until = now() - interval '1 second' where id = $1", [u.id]);
    const fresh = await challenge(u.email);
    expect(claimsOf(expectSession(await verify({ mfaToken: fresh, code: right })).accessToken).amr).toEqual([
      'pwd',
      'otp',
    ]);
    const [after] = await row('select failed_logins from users where id = $1', [u.id]);
    expect(after?.failed_logins).toBe(0);

    const failed = await audit(tenant.as(u), 'mfa.challenge_failed');
    expect(failed).toHaveLength(5);
    for (const e of failed) expect(e.actorUserId).toBe(u.id);
  });

  // Regression: counting a wrong code once cleared the account's lock first, even a running one.
  it('a wrong code on a challenge begun before the account was locked does not lift the lock', async () => {
    const u = await createUser(app);
    const { a } = await enable(u);
    const mfaToken = await challenge(u.email);
    // Meanwhile the account is locked (five wrong passwords elsewhere).
    for (let i = 0; i < 5; i++)
      expectError(await login(u.email, { password: 'wrong guess' }), 401, 'invalid_credentials');
    const [locked] = await row('select failed_logins, locked_until from users where id = $1', [u.id]);
    expect(locked?.locked_until).toEqual(expect.any(Date));

    expectError(await verify({ mfaToken, code: wrongCode(a) }), 401, 'invalid_mfa_code');
    const [after] = await row('select failed_logins, locked_until from users where id = $1', [u.id]);
    expect(after?.failed_logins).toBe(6);
    expect((after!.locked_until as Date).getTime()).toBeGreaterThanOrEqual((locked!.locked_until as Date).getTime());
    expectError(await login(u.email), 401, 'invalid_credentials');
  });

  it('wrong passwords and codes given inside a session count toward the lock too; a locked account cannot re-authenticate', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { a } = await enable(u);
    const s = await signInWithCode(u, a);

    // A stolen session guessing: wrong passwords on re-authentication and wrong codes after the right password.
    const guesses: Array<[string, Record<string, string>, number, string]> = [
      ['/auth/mfa/disable', { password: 'guess one', code: wrongCode(a) }, 400, 'wrong_password'],
      ['/auth/mfa/recovery-codes', { password: 'guess two', code: wrongCode(a) }, 400, 'wrong_password'],
      ['/auth/mfa/disable', { password: PASSWORD, code: wrongCode(a) }, 401, 'invalid_mfa_code'],
      [
        '/auth/mfa/recovery-codes',
        { password: PASSWORD, recoveryCode: 'AAAA-BBBB-CCCC-DDDD' },
        401,
        'invalid_mfa_code',
      ],
    ];
    for (const [url, body, statusCode, code] of guesses) expectError(await post(url, body, s.auth), statusCode, code);
    const [mid] = await row('select failed_logins, locked_until from users where id = $1', [u.id]);
    expect(mid).toMatchObject({ failed_logins: 4, locked_until: null });
    expectError(
      await post(
        '/auth/change-password',
        { currentPassword: 'guess three', newPassword: 'a brand new passphrase' },
        s.auth,
      ),
      400,
      'wrong_password',
    );

    // Locked: the right password and a right code are refused in the session, and sign-in fails as for a wrong password.
    const code = await nextCode(a);
    expectError(await post('/auth/mfa/disable', { password: PASSWORD, code }, s.auth), 403, 'account_locked');
    expectError(
      await post('/auth/change-password', { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }, s.auth),
      403,
      'account_locked',
    );
    expectError(await login(u.email), 401, 'invalid_credentials');
    expect(await status(u)).toMatchObject({ enabled: true, recoveryCodesRemaining: 10 });
    const locked = await audit(tenant.as(u), 'account.locked');
    expect(locked).toHaveLength(1);
    expect(locked[0]).toMatchObject({ actorUserId: u.id, details: { after: 'reauth' } });

    // When the lock runs out, the code refused while locked (never checked) still works.
    await tdb.db.query("update users set locked_until = now() - interval '1 second' where id = $1", [u.id]);
    const res = await post('/auth/mfa/disable', { password: PASSWORD, code }, s.auth);
    expect(res.statusCode, res.body).toBe(204);
  });

  it('turning two-factor authentication on ends the sessions opened with the password alone, except the current one', async () => {
    const u = await createUser(app);
    const other = await login(u.email);
    expect(other.statusCode, other.body).toBe(200);
    await enable(u);
    const refresh = (refreshToken: string) =>
      app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });
    expectError(await refresh(other.json().data.refreshToken), 401, 'invalid_refresh_token');
    expect((await refresh(u.refreshToken)).statusCode).toBe(200);
  });

  it('wrong recovery codes count as attempts too', async () => {
    const u = await createUser(app);
    const { recoveryCodes } = await enable(u);
    const mfaToken = await challenge(u.email);
    for (let i = 0; i < 5; i++) {
      expectError(await verify({ mfaToken, recoveryCode: 'AAAA-AAAA-AAAA-AAAA' }), 401, 'invalid_mfa_code');
    }
    expectError(await verify({ mfaToken, recoveryCode: recoveryCodes[0] }), 401, 'mfa_challenge_expired');
    expect((await status(u)).recoveryCodesRemaining).toBe(10);
  });

  it('an expired challenge is refused', async () => {
    const u = await createUser(app);
    const { a } = await enable(u);
    const mfaToken = await challenge(u.email);
    await tdb.db.query("update mfa_challenges set expires_at = now() - interval '1 second' where user_id = $1", [u.id]);
    expectError(await verify({ mfaToken, code: await nextCode(a) }), 401, 'mfa_challenge_expired');
  });

  it('concurrent verifications with the same code: exactly one succeeds', async () => {
    const u = await createUser(app);
    const { a } = await enable(u);
    const [t1, t2] = [await challenge(u.email), await challenge(u.email)];
    const code = await nextCode(a);
    const results = await Promise.all([verify({ mfaToken: t1, code }), verify({ mfaToken: t2, code })]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401]);
    expectError(results.find((r) => r.statusCode === 401)!, 401, 'invalid_mfa_code');
  });

  it('validation: code and recoveryCode together or neither, or a code that is not six digits, is a 400 that counts no attempt', async () => {
    const u = await createUser(app);
    const { a, recoveryCodes } = await enable(u);
    const mfaToken = await challenge(u.email);
    const bad: Array<Record<string, unknown>> = [
      { mfaToken, code: '123456', recoveryCode: recoveryCodes[0] },
      { mfaToken },
      { mfaToken, code: '12345' },
      { mfaToken, code: '1234567' },
      { mfaToken, code: 'abcdef' },
      { mfaToken, code: 123456 },
      { mfaToken, recoveryCode: 'short' },
      { mfaToken: 'short', code: '123456' },
      { code: '123456' },
    ];
    for (const payload of bad) expectError(await verify(payload), 400, 'validation_failed');
    expectError(await post('/auth/mfa/totp/confirm', { code: '12345' }, u.auth), 400, 'validation_failed');
    expectError(await post('/auth/mfa/disable', { password: PASSWORD }, u.auth), 400, 'validation_failed');
    expectError(
      await post(
        '/auth/mfa/recovery-codes',
        { password: PASSWORD, code: '123456', recoveryCode: recoveryCodes[1] },
        u.auth,
      ),
      400,
      'validation_failed',
    );
    // Nine malformed requests, more than the five attempts: the challenge is still open.
    expectSession(await verify({ mfaToken, code: await nextCode(a) }));
    expect((await status(u)).recoveryCodesRemaining).toBe(10);
  });

  // --- recovery codes -------------------------------------------------------------------------

  it('a recovery code signs in once, in any case and with or without dashes; the count goes down; its use is audited', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { recoveryCodes } = await enable(u);
    const [first, second] = recoveryCodes as [string, string];

    const s = expectSession(await verify({ mfaToken: await challenge(u.email), recoveryCode: first }));
    expect(claimsOf(s.accessToken).amr).toEqual(['pwd', 'otp']);
    expect((await status(u)).recoveryCodesRemaining).toBe(9);
    expectError(await verify({ mfaToken: await challenge(u.email), recoveryCode: first }), 401, 'invalid_mfa_code');

    const typed = second.toLowerCase().replaceAll('-', '');
    expectSession(await verify({ mfaToken: await challenge(u.email), recoveryCode: typed }));
    expect((await status(u)).recoveryCodesRemaining).toBe(8);
    const [used] = await row(
      'select count(*)::int as n from recovery_codes where user_id = $1 and used_at is not null',
      [u.id],
    );
    expect(used?.n).toBe(2);

    const entries = await audit(tenant.as(u), 'mfa.recovery_code_used');
    expect(entries).toHaveLength(2);
    for (const e of entries) expect(e.actorUserId).toBe(u.id);
  });

  it('regenerating recovery codes needs the password and a code; the old ones stop working, the ten new ones work', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { a, recoveryCodes: old } = await enable(u);

    expectError(
      await post('/auth/mfa/recovery-codes', { password: 'not the password', code: wrongCode(a) }, u.auth),
      400,
      'wrong_password',
    );
    expectError(
      await post('/auth/mfa/recovery-codes', { password: PASSWORD, code: wrongCode(a) }, u.auth),
      401,
      'invalid_mfa_code',
    );
    expectError(
      await post('/auth/mfa/recovery-codes', { password: PASSWORD, recoveryCode: 'AAAA-AAAA-AAAA-AAAA' }, u.auth),
      401,
      'invalid_mfa_code',
    );
    const res = await post('/auth/mfa/recovery-codes', { password: PASSWORD, code: await nextCode(a) }, u.auth);
    expect(res.statusCode, res.body).toBe(200);
    const fresh = res.json().data.recoveryCodes as string[];
    expect(fresh).toHaveLength(10);
    expect(new Set(fresh).size).toBe(10);
    for (const c of fresh) {
      expect(c).toMatch(RECOVERY_CODE);
      expect(old).not.toContain(c);
    }
    expect((await status(u)).recoveryCodesRemaining).toBe(10);
    expect(await row('select 1 from recovery_codes where user_id = $1', [u.id])).toHaveLength(10);

    expectError(await verify({ mfaToken: await challenge(u.email), recoveryCode: old[0] }), 401, 'invalid_mfa_code');
    for (const c of fresh) expectSession(await verify({ mfaToken: await challenge(u.email), recoveryCode: c }));
    expect((await status(u)).recoveryCodesRemaining).toBe(0);

    const regenerated = await audit(tenant.as(u), 'mfa.recovery_codes_regenerated');
    expect(regenerated).toHaveLength(1);
    expect(regenerated[0]?.actorUserId).toBe(u.id);

    const off = await createUser(app);
    expectError(
      await post('/auth/mfa/recovery-codes', { password: PASSWORD, code: '123456' }, off.auth),
      409,
      'mfa_not_enabled',
    );
  });

  // --- cookie mode ----------------------------------------------------------------------------

  it('verify in cookie mode sets the refresh cookie and returns a CSRF token, no refresh token in the body', async () => {
    const u = await createUser(app);
    const { a } = await enable(u);

    const first = await login(u.email, { mode: 'cookie' });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json().data.mfaRequired).toBe(true);
    expect(first.cookies.map((c) => c.name)).not.toContain('quire_refresh');

    const res = await verify({ mfaToken: first.json().data.mfaToken, code: await nextCode(a), mode: 'cookie' });
    const s = expectSession(res);
    expect(s.refreshToken).toBeUndefined();
    expect(s.csrfToken).toEqual(expect.any(String));
    expect(claimsOf(s.accessToken).amr).toEqual(['pwd', 'otp']);
    const set = Object.fromEntries(res.cookies.map((c) => [c.name, c]));
    expect(set.quire_refresh).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/api/v1/auth' });
    expect(set.quire_csrf).toBeDefined();

    // The cookie refreshes (with the CSRF token), and the otp factor carries over.
    const refreshed = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      headers: {
        cookie: `quire_refresh=${set.quire_refresh!.value}; quire_csrf=${set.quire_csrf!.value}`,
        'x-csrf-token': s.csrfToken!,
      },
    });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    expect(refreshed.json().data.refreshToken).toBeUndefined();
    expect(claimsOf(refreshed.json().data.accessToken).amr).toEqual(['pwd', 'otp']);
  });

  // --- disabling ------------------------------------------------------------------------------

  it('disable needs the password and a code; afterwards sign-in gives tokens directly and the recovery codes are gone', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { a } = await enable(u);

    const code = await nextCode(a);
    expectError(await post('/auth/mfa/disable', { password: 'not the password', code }, u.auth), 400, 'wrong_password');
    expectError(await post('/auth/mfa/disable', { code }, u.auth), 400, 'wrong_password');
    expectError(
      await post('/auth/mfa/disable', { password: PASSWORD, code: wrongCode(a) }, u.auth),
      401,
      'invalid_mfa_code',
    );
    expect(await status(u)).toMatchObject({ enabled: true, recoveryCodesRemaining: 10 });
    expectError(await post('/auth/mfa/disable', { password: PASSWORD, code }), 401);

    // The code refused with the wrong password was not used up.
    const res = await post('/auth/mfa/disable', { password: PASSWORD, code }, u.auth);
    expect(res.statusCode, res.body).toBe(204);
    expect(await status(u)).toEqual({ enabled: false, enabledAt: null, pending: false, recoveryCodesRemaining: 0 });
    expect(await row('select 1 from recovery_codes where user_id = $1', [u.id])).toHaveLength(0);
    const [user] = await row('select totp_secret, totp_enabled_at from users where id = $1', [u.id]);
    expect(user).toMatchObject({ totp_secret: null, totp_enabled_at: null });

    const s = expectSession(await login(u.email));
    expect(claimsOf(s.accessToken).amr).toEqual(['pwd']);
    expectError(
      await post('/auth/mfa/disable', { password: PASSWORD, code: '123456' }, u.auth),
      409,
      'mfa_not_enabled',
    );

    const disabled = await audit(tenant.as(u), 'mfa.disabled');
    expect(disabled).toHaveLength(1);
    expect(disabled[0]?.actorUserId).toBe(u.id);

    // It can be turned on again, with a new secret.
    const again = await enroll(u);
    expect(again.secret).not.toBe(a.secret);
    expect((await status(u)).pending).toBe(true);
  });

  it('disable also takes a recovery code instead of a TOTP code', async () => {
    const u = await createUser(app);
    const tenant = await createTenant(app, u);
    const { recoveryCodes } = await enable(u);
    const res = await post('/auth/mfa/disable', { password: PASSWORD, recoveryCode: recoveryCodes[3] }, u.auth);
    expect(res.statusCode, res.body).toBe(204);
    expect((await status(u)).enabled).toBe(false);
    expect(expectSession(await login(u.email)).accessToken).toEqual(expect.any(String));
    expect(await audit(tenant.as(u), 'mfa.recovery_code_used')).toHaveLength(1);
    expect(await audit(tenant.as(u), 'mfa.disabled')).toHaveLength(1);
  });

  // --- tenant policy --------------------------------------------------------------------------

  it('tenant policy: only an owner signed in with a second factor turns it on; then staff without one get 403 mfa_required until they sign in with it', async () => {
    const owner = await createUser(app);
    const tenant = await createTenant(app, owner);
    const admin = await createMember(app, tenant, 'admin');
    const editor = await createMember(app, tenant, 'editor');
    const security = `/tenants/${tenant.id}/security`;
    const posts = (headers: Record<string, string>) => get('/posts', headers);

    const initial = await get(security, owner.auth);
    expect(initial.statusCode, initial.body).toBe(200);
    expect(initial.json().data).toEqual({ requireMfa: false });

    // A password-only owner cannot require what they have not got; an admin cannot at all.
    expectError(await put(security, { requireMfa: true }, owner.auth), 422, 'mfa_required_first');
    expectError(await put(security, { requireMfa: true }, admin.auth), 403, 'forbidden');
    expectError(await put(security, { requireMfa: false }, admin.auth), 403, 'forbidden');
    expectError(await put(security, { requireMfa: true, extra: 1 }, owner.auth), 400, 'validation_failed');
    const noop = await put(security, { requireMfa: false }, owner.auth);
    expect(noop.statusCode, noop.body).toBe(200);
    expect((await get(security, owner.auth)).json().data).toEqual({ requireMfa: false });
    expect(await audit(tenant.as(owner), 'tenant.mfa_policy_changed')).toHaveLength(0);

    // The owner turns on TOTP and signs in with it.
    const { a: ownerApp } = await enable(owner);
    const strong = await signInWithCode(owner, ownerApp);
    const on = await put(security, { requireMfa: true }, strong.auth);
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json().data).toEqual({ requireMfa: true });
    expect((await get(security, strong.auth)).json().data).toEqual({ requireMfa: true });
    expectError(await put(security, { requireMfa: false }, admin.auth), 403, 'forbidden');
    // Setting it to what it is already changes nothing (and records nothing).
    expect((await put(security, { requireMfa: true }, strong.auth)).statusCode).toBe(200);

    // Staff sessions without a second factor (the owner's own password-only one included).
    for (const who of [editor, admin, owner]) {
      expectError(await posts(tenant.as(who)), 403, 'mfa_required');
    }
    expectError(await get(security, editor.auth), 403, 'mfa_required');
    // Not tenant-scoped: still fine.
    const me = await get('/auth/me', editor.auth);
    expect(me.statusCode, me.body).toBe(200);
    expect((await get('/tenants', editor.auth)).statusCode).toBe(200);
    expect((await posts({ ...strong.auth, 'x-tenant-id': tenant.id })).statusCode).toBe(200);

    // API keys are not affected.
    const created = await post(
      `/tenants/${tenant.id}/api-keys`,
      { name: 'reader', scopes: ['content:read'] },
      strong.auth,
    );
    expect(created.statusCode, created.body).toBe(201);
    const key = created.json().data.key as string;
    const viaKey = await posts({ 'x-api-key': key });
    expect(viaKey.statusCode, viaKey.body).toBe(200);
    expectError(await get('/auth/mfa', { 'x-api-key': key }), 403, 'api_key_not_allowed');

    // The editor turns it on (not tenant-scoped, so allowed) and signs in with a code.
    const { a: editorApp, recoveryCodes: editorCodes } = await enable(editor);
    expectError(await posts(tenant.as(editor)), 403, 'mfa_required');
    const editorStrong = await signInWithCode(editor, editorApp);
    const ok = await posts({ ...editorStrong.auth, 'x-tenant-id': tenant.id });
    expect(ok.statusCode, ok.body).toBe(200);
    // A recovery code is a second factor as good as a TOTP code; here the session is bound to the tenant.
    const bound = expectSession(
      await verify({ mfaToken: await challenge(editor.email, { tenantId: tenant.id }), recoveryCode: editorCodes[0] }),
    );
    expect(claimsOf(bound.accessToken)).toMatchObject({ tid: tenant.id, amr: ['pwd', 'otp'] });
    expect((await posts(bearer(bound.accessToken))).statusCode).toBe(200);

    const changed = await audit({ ...strong.auth, 'x-tenant-id': tenant.id }, 'tenant.mfa_policy_changed');
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ actorUserId: owner.id, details: { requireMfa: true } });

    // Turned off again: password-only sessions work at once.
    const off = await put(security, { requireMfa: false }, strong.auth);
    expect(off.statusCode, off.body).toBe(200);
    expect((await posts(tenant.as(editor))).statusCode).toBe(200);
    expect((await posts(tenant.as(owner))).statusCode).toBe(200);
    expect(await audit(tenant.as(owner), 'tenant.mfa_policy_changed')).toHaveLength(2);
  });
});
