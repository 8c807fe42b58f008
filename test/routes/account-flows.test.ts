import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createPost, createTenant, createUser, PASSWORD, type TestUser } from '../helpers/factories.js';
import { type ModeEnv, modeEnv } from '../helpers/jobs.js';
import { claimsOf } from '../helpers/jwt.js';
import { type ReceivedMail, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { eventually, sleep } from '../helpers/wait.js';

/**
 * Account flows end to end: email verification, password reset and change, signing out
 * everywhere, lockout and the sign-in rate limit. Emails go the real way (outbox → relay →
 * email queue → worker → SMTP) to a real SMTP server on localhost; every emailed token used here
 * is read out of the text part of a message that server received.
 */
const PUBLIC_URL = 'https://quire.test';
const NEW_PASSWORD = 'a brand new passphrase 42';
const SUBJECT = {
  welcome: 'Welcome to Quire',
  verify: 'Confirm your email for Quire',
  reset: 'Reset your Quire password',
} as const;

let seq = 0;
const freshEmail = (label: string) => `${label}-${Date.now().toString(36)}-${++seq}@example.com`;

describe.each(databaseKinds)('account flows on $name', (kind) => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  let container: Container;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    menv = await modeEnv({ name: `pg-boss on ${kind.name}`, backend: 'pg-boss', kind }, 'account');
    tdb = await kind.create();
    ({ app, container } = await createTestStack(tdb.db, { ...menv.env, SMTP_URL: smtp.url, PUBLIC_URL }));
    expect(container.mailer.kind).toBe('smtp');
    await container.startWorkers();
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
    await smtp?.stop();
  });

  // --- requests -------------------------------------------------------------------------------

  const post = (url: string, payload?: object, headers: Record<string, string> = {}, on = app) =>
    on.inject({ method: 'POST', url: `/api/v1${url}`, payload, headers });
  const login = (email: string, password: string, on = app) => post('/auth/login', { email, password }, {}, on);
  const refresh = (refreshToken: string) => post('/auth/refresh', { refreshToken });
  const me = async (user: { auth: Record<string, string> }) => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: user.auth });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as { user: { id: string; emailVerified: boolean }; memberships: { tenantId: string }[] };
  };
  /** A fresh sign-in: a new session (refresh-token family). */
  const signIn = async (email: string, password = PASSWORD) => {
    const res = await login(email, password);
    expect(res.statusCode, res.body).toBe(200);
    const d = res.json().data as { accessToken: string; refreshToken: string };
    return { ...d, auth: { authorization: `Bearer ${d.accessToken}` } };
  };
  const expectBadCredentials = (res: LightMyRequestResponse) => expectError(res, 401, 'invalid_credentials');

  // --- mail -----------------------------------------------------------------------------------

  const mailsTo = (email: string, subject: string) => smtp.to(email).filter((m) => m.subject === subject);
  /** Waits for the `n`th message (1-based) with `subject` to `email`. */
  const nthMail = (email: string, subject: string, n: number): Promise<ReceivedMail> =>
    eventually(() => mailsTo(email, subject)[n - 1], `message ${n} "${subject}" to ${email}`);
  /** The token of the `<PUBLIC_URL>/<path>?token=` link in the text part. */
  const tokenIn = (mail: ReceivedMail, path: 'verify-email' | 'reset-password'): string => {
    expect(mail.text, 'the message has a text part').toEqual(expect.any(String));
    const m = new RegExp(`${PUBLIC_URL.replace(/[.]/g, '\\.')}/${path}\\?token=(\\S+)`).exec(mail.text ?? '');
    expect(m, `a ${path} link in: ${mail.text}`).not.toBeNull();
    const token = decodeURIComponent(m![1]!);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return token;
  };
  const welcomeToken = async (email: string) => tokenIn(await nthMail(email, SUBJECT.welcome, 1), 'verify-email');
  const resetToken = async (email: string, n: number) =>
    tokenIn(await nthMail(email, SUBJECT.reset, n), 'reset-password');
  /** Until the outbox is drained and the email queue has nothing waiting or running. */
  const emailQueueIdle = () =>
    eventually(async () => {
      const pending = await tdb.db.query('SELECT count(*)::int AS n FROM outbox WHERE dispatched_at IS NULL');
      const c = await container.queue.counts('email');
      return pending.rows[0]?.n === 0 && c.waiting + c.active + c.delayed === 0;
    }, 'the outbox and the email queue to be idle');
  const outboxCount = async (name: string) =>
    Number((await tdb.db.query('SELECT count(*)::int AS n FROM outbox WHERE name = $1', [name])).rows[0]?.n);

  const verify = (token: string) => post('/auth/verify-email', { token });
  const forgot = (email: string) => post('/auth/forgot-password', { email });
  const reset = (token: string, password = NEW_PASSWORD) => post('/auth/reset-password', { token, password });
  const lockOut = async (email: string) => {
    for (let i = 0; i < 5; i++) expectBadCredentials(await login(email, `wrong password ${i}`));
  };

  // --- verification ---------------------------------------------------------------------------

  it('registration → one welcome email with a verify link → verify → me.emailVerified at once → publish works', async () => {
    const email = freshEmail('verify');
    const reg = await post('/auth/register', { email, password: PASSWORD, name: 'Vera' });
    expect(reg.statusCode, reg.body).toBe(201);
    const session = await signIn(email);
    const user: TestUser = { id: reg.json().data.user.id, email, name: 'Vera', ...session };
    expect((await me(user)).user.emailVerified).toBe(false);
    const tenant = await createTenant(app, user);
    const draft = await createPost(app, tenant, user);
    const publish = () => post(`/posts/${draft.id}/publish`, {}, tenant.as(user));
    expectError(await publish(), 403, 'email_unverified');

    const welcome = await nthMail(email, SUBJECT.welcome, 1);
    expect(welcome.envelope.to).toEqual([email]);
    expect(welcome.text).toContain('Welcome, Vera');
    const token = tokenIn(welcome, 'verify-email');
    const res = await verify(token);
    expect(res.statusCode, res.body).toBe(204);
    expect(res.body).toBe('');

    // The same access token, no new sign-in: the cached /me saw false a moment ago.
    expect((await me(user)).user.emailVerified).toBe(true);
    const published = await publish();
    expect(published.statusCode, published.body).toBe(200);
    expect(published.json().data.status).toBe('published');

    // One email at registration: the welcome carries the link; no separate verification email.
    await emailQueueIdle();
    expect(smtp.to(email)).toHaveLength(1);
  });

  it('a verification token works once; an unknown token is refused alike (400 invalid_token)', async () => {
    const u = await createUser(app, { verified: false });
    const token = await welcomeToken(u.email);
    expect((await verify(token)).statusCode).toBe(204);
    expectError(await verify(token), 400, 'invalid_token');
    expectError(await verify(`${token.slice(0, -4)}AAAA`), 400, 'invalid_token');
    expect((await me(u)).user.emailVerified).toBe(true);
  });

  it('resend-verification emails a new link and the first one stops working; nothing when already verified', async () => {
    const u = await createUser(app, { verified: false });
    const first = await welcomeToken(u.email);
    const res = await post('/auth/resend-verification', undefined, u.auth);
    expect(res.statusCode, res.body).toBe(202);
    const mail = await nthMail(u.email, SUBJECT.verify, 1);
    const second = tokenIn(mail, 'verify-email');
    expect(second).not.toBe(first);

    expectError(await verify(first), 400, 'invalid_token');
    expect((await me(u)).user.emailVerified).toBe(false);
    expect((await verify(second)).statusCode).toBe(204);
    expect((await me(u)).user.emailVerified).toBe(true);

    // Verified now: 202 again, but nothing is recorded or sent.
    const before = await outboxCount('verify-email');
    expect((await post('/auth/resend-verification', undefined, u.auth)).statusCode).toBe(202);
    expect(await outboxCount('verify-email')).toBe(before);
    await emailQueueIdle();
    expect(mailsTo(u.email, SUBJECT.verify)).toHaveLength(1);
  });

  it('unverified: signs in and writes drafts, but publish, schedule and managing members are 403 email_unverified', async () => {
    const owner = await createUser(app);
    const tenant = await createTenant(app, owner);
    const u = await createUser(app, { verified: false });
    const other = await createUser(app);
    for (const [member, role] of [
      [u, 'admin'],
      [other, 'editor'],
    ] as const) {
      const added = await post(`/tenants/${tenant.id}/members`, { email: member.email, role }, owner.auth);
      expect(added.statusCode, added.body).toBe(201);
    }
    const invitation = await post(
      `/tenants/${tenant.id}/members`,
      { email: freshEmail('invitee'), role: 'viewer' },
      owner.auth,
    );
    expect(invitation.statusCode, invitation.body).toBe(202);
    const invitationId = invitation.json().data.invitationId as string;

    // Sign-in works, and /me says why the rest will not.
    const session = await signIn(u.email);
    const self = { ...u, auth: session.auth };
    expect((await me(self)).user.emailVerified).toBe(false);
    const draft = await createPost(app, tenant, self);
    expect(draft.status).toBe('draft');

    const h = tenant.as(self);
    const publishAt = new Date(Date.now() + 86_400_000).toISOString();
    expectError(await post(`/posts/${draft.id}/publish`, {}, h), 403, 'email_unverified');
    expectError(await post(`/posts/${draft.id}/schedule`, { publishAt }, h), 403, 'email_unverified');
    expectError(
      await post(`/tenants/${tenant.id}/members`, { email: freshEmail('nope'), role: 'viewer' }, self.auth),
      403,
      'email_unverified',
    );
    const changeRole = () =>
      app.inject({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenant.id}/members/${other.id}`,
        headers: self.auth,
        payload: { role: 'viewer' },
      });
    expectError(await changeRole(), 403, 'email_unverified');
    expectError(
      await app.inject({
        method: 'DELETE',
        url: `/api/v1/tenants/${tenant.id}/members/${other.id}`,
        headers: self.auth,
      }),
      403,
      'email_unverified',
    );
    expectError(
      await app.inject({
        method: 'DELETE',
        url: `/api/v1/tenants/${tenant.id}/invitations/${invitationId}`,
        headers: self.auth,
      }),
      403,
      'email_unverified',
    );

    // Nothing happened: the post is a draft, the member keeps their role, the invitation stands.
    const got = await app.inject({ method: 'GET', url: `/api/v1/posts/${draft.id}`, headers: h });
    expect(got.json().data.status).toBe('draft');
    const members = await app.inject({
      method: 'GET',
      url: `/api/v1/tenants/${tenant.id}/members`,
      headers: owner.auth,
    });
    expect(members.json().data).toContainEqual(expect.objectContaining({ userId: other.id, role: 'editor' }));
    const invitations = await app.inject({
      method: 'GET',
      url: `/api/v1/tenants/${tenant.id}/invitations`,
      headers: owner.auth,
    });
    expect(invitations.json().data).toContainEqual(expect.objectContaining({ id: invitationId }));

    // It was the address, not the role: once verified, the same admin may.
    expect((await verify(await welcomeToken(u.email))).statusCode).toBe(204);
    expect((await changeRole()).statusCode).toBe(204);
    const published = await post(`/posts/${draft.id}/publish`, {}, h);
    expect(published.statusCode, published.body).toBe(200);
  });

  it('unverified: leaving a tenant yourself is allowed', async () => {
    const tenant = await createTenant(app);
    const u = await createUser(app, { verified: false });
    const added = await post(`/tenants/${tenant.id}/members`, { email: u.email, role: 'editor' }, tenant.owner.auth);
    expect(added.statusCode, added.body).toBe(201);
    expect((await me(u)).memberships.map((m) => m.tenantId)).toContain(tenant.id);

    const res = await app.inject({
      method: 'DELETE',
      url: `/api/v1/tenants/${tenant.id}/members/${u.id}`,
      headers: u.auth,
    });
    expect(res.statusCode, res.body).toBe(204);
    expect((await me(u)).memberships.map((m) => m.tenantId)).not.toContain(tenant.id);
    expect((await me(u)).user.emailVerified).toBe(false);
  });

  // --- forgotten password ---------------------------------------------------------------------

  it('forgot-password: the same 202 and body for a known and an unknown email; only the known one gets a message', async () => {
    const known = await createUser(app);
    const unknown = freshEmail('nobody');
    const rows = await outboxCount('password-reset');
    const a = await forgot(unknown);
    expect(await outboxCount('password-reset')).toBe(rows + 1);
    const b = await forgot(known.email);
    expect(await outboxCount('password-reset')).toBe(rows + 2);
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(a.body).toBe(b.body);
    expect(a.headers['content-type']).toBe(b.headers['content-type']);
    expect(a.headers['content-length']).toBe(b.headers['content-length']);

    const mail = await nthMail(known.email, SUBJECT.reset, 1);
    expect(mail.envelope.to).toEqual([known.email]);
    tokenIn(mail, 'reset-password');
    // The unknown address was asked first; give its job every chance to (wrongly) send.
    await emailQueueIdle();
    await sleep(250);
    expect(smtp.to(unknown)).toEqual([]);
  });

  // The documented empty body: no `null` JSON text (a regression test).
  it('202 answers of forgot-password and resend-verification have an empty body', async () => {
    const u = await createUser(app, { verified: false });
    for (const res of [
      await forgot(u.email),
      await forgot(freshEmail('nobody')),
      await post('/auth/resend-verification', undefined, u.auth),
    ]) {
      expect(res.statusCode).toBe(202);
      expect(res.body).toBe('');
    }
  });

  it('reset-password sets the new password and ends every session; the token works once', async () => {
    const u = await createUser(app);
    const other = await signIn(u.email);
    expect((await forgot(u.email)).statusCode).toBe(202);
    const token = await resetToken(u.email, 1);
    // A reset token is no verification token.
    expectError(await verify(token), 400, 'invalid_token');

    const res = await reset(token);
    expect(res.statusCode, res.body).toBe(204);
    expectBadCredentials(await login(u.email, PASSWORD));
    expect((await login(u.email, NEW_PASSWORD)).statusCode).toBe(200);
    // Both sessions that existed before the reset are over.
    expectError(await refresh(u.refreshToken), 401, 'invalid_refresh_token');
    expectError(await refresh(other.refreshToken), 401, 'invalid_refresh_token');

    // Second use: refused, and the password stays the one set by the first.
    expectError(await reset(token, 'yet another password 99'), 400, 'invalid_token');
    expectBadCredentials(await login(u.email, 'yet another password 99'));
    expect((await login(u.email, NEW_PASSWORD)).statusCode).toBe(200);
  });

  it('reset-password: a token lives one hour; past its expiry it is refused and nothing changes', async () => {
    const u = await createUser(app);
    expect((await forgot(u.email)).statusCode).toBe(202);
    const token = await resetToken(u.email, 1);
    const tokenHash = createHash('sha256').update(token).digest('hex');
    const row = await tdb.db.query(
      `SELECT extract(epoch FROM expires_at - created_at)::int AS ttl FROM auth_tokens
       WHERE token_hash = $1 AND purpose = 'reset-password' AND used_at IS NULL`,
      [tokenHash],
    );
    expect(Number(row.rows[0]?.ttl)).toBeGreaterThanOrEqual(3590);
    expect(Number(row.rows[0]?.ttl)).toBeLessThanOrEqual(3610);

    const moved = await tdb.db.query(
      `UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1 RETURNING id`,
      [tokenHash],
    );
    expect(moved.rows).toHaveLength(1);
    expectError(await reset(token), 400, 'invalid_token');
    expectBadCredentials(await login(u.email, NEW_PASSWORD));
    expect((await login(u.email, PASSWORD)).statusCode).toBe(200);
  });

  it('reset-password lifts a lockout and proves the address', async () => {
    const u = await createUser(app, { verified: false });
    await lockOut(u.email);
    expectBadCredentials(await login(u.email, PASSWORD));

    expect((await forgot(u.email)).statusCode).toBe(202);
    expect((await reset(await resetToken(u.email, 1))).statusCode).toBe(204);
    const session = await signIn(u.email, NEW_PASSWORD);
    expect((await me(session)).user.emailVerified).toBe(true);
  });

  // --- sessions -------------------------------------------------------------------------------

  it('the access token carries a sid claim (its session) that stays the same across refresh rotations', async () => {
    const u = await createUser(app);
    const sid = claimsOf(u.accessToken).sid;
    expect(sid).toEqual(expect.any(String));
    expect(String(sid).length).toBeGreaterThan(0);

    let refreshToken = u.refreshToken;
    for (let i = 0; i < 2; i++) {
      const res = await refresh(refreshToken);
      expect(res.statusCode, res.body).toBe(200);
      const pair = res.json().data as { accessToken: string; refreshToken: string };
      expect(claimsOf(pair.accessToken)).toMatchObject({ sub: u.id, sid });
      refreshToken = pair.refreshToken;
    }
    // Another sign-in is another session.
    const other = await signIn(u.email);
    expect(claimsOf(other.accessToken).sid).toEqual(expect.any(String));
    expect(claimsOf(other.accessToken).sid).not.toBe(sid);
  });

  it('change-password: a wrong current password is 400 wrong_password; other sessions end, this one stays', async () => {
    const u = await createUser(app);
    let other = await signIn(u.email);
    const change = (currentPassword: string) =>
      post('/auth/change-password', { currentPassword, newPassword: NEW_PASSWORD }, u.auth);

    expectError(await change('not my password at all'), 400, 'wrong_password');
    // Nothing changed: the other session lives, the old password still signs in.
    const stillAlive = await refresh(other.refreshToken);
    expect(stillAlive.statusCode, stillAlive.body).toBe(200);
    other = { ...other, ...stillAlive.json().data };
    expect((await login(u.email, PASSWORD)).statusCode).toBe(200);

    const res = await change(PASSWORD);
    expect(res.statusCode, res.body).toBe(204);
    expectError(await refresh(other.refreshToken), 401, 'invalid_refresh_token');
    const own = await refresh(u.refreshToken);
    expect(own.statusCode, own.body).toBe(200);
    expect(claimsOf(own.json().data.accessToken).sid).toBe(claimsOf(u.accessToken).sid);
    expectBadCredentials(await login(u.email, PASSWORD));
    expect((await login(u.email, NEW_PASSWORD)).statusCode).toBe(200);
  });

  it('logout-all: every refresh token of the user stops working', async () => {
    const u = await createUser(app);
    const second = await signIn(u.email);
    const rotated = await refresh(u.refreshToken);
    expect(rotated.statusCode, rotated.body).toBe(200);
    const current = rotated.json().data as { accessToken: string; refreshToken: string };

    const res = await post('/auth/logout-all', undefined, { authorization: `Bearer ${current.accessToken}` });
    expect(res.statusCode, res.body).toBe(204);
    expectError(await refresh(current.refreshToken), 401, 'invalid_refresh_token');
    expectError(await refresh(second.refreshToken), 401, 'invalid_refresh_token');
    // A fresh sign-in opens a new session as usual.
    expect((await refresh((await signIn(u.email)).refreshToken)).statusCode).toBe(200);
  });

  // --- lockout and rate limit -----------------------------------------------------------------

  it('lockout: after 5 failures even the right password gets the wrong-password answer; unlocked once locked_until passes', async () => {
    const u = await createUser(app);
    await lockOut(u.email);
    const locked = expectBadCredentials(await login(u.email, PASSWORD));
    const wrong = expectBadCredentials(await login(u.email, 'still the wrong password'));
    const unknown = expectBadCredentials(await login(freshEmail('ghost'), PASSWORD));
    for (const e of [wrong, unknown]) {
      expect({ code: locked.code, message: locked.message }).toEqual({ code: e.code, message: e.message });
    }

    const moved = await tdb.db.query(
      `UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1 AND locked_until > now() RETURNING id`,
      [u.id],
    );
    expect(moved.rows, 'the account was locked').toHaveLength(1);
    expect((await login(u.email, PASSWORD)).statusCode).toBe(200);
  });

  it('lockout: a success resets the count (4 failures, success, 4 failures: not locked)', async () => {
    const u = await createUser(app);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4; i++) expectBadCredentials(await login(u.email, `wrong password ${round}-${i}`));
      const ok = await login(u.email, PASSWORD);
      expect(ok.statusCode, `round ${round}: ${ok.body}`).toBe(200);
    }
  });

  // A regression test: a second route-level limiter made with app.rateLimit() was skipped (the
  // request was already marked as checked); the login counter now has its own createRateLimit.
  it('a lock that has run out gives a fresh set of attempts: one more failure does not lock again', async () => {
    const u = await createUser(app);
    for (let i = 0; i < 5; i++) expect((await login(u.email, 'wrong password!')).statusCode).toBe(401);
    await tdb.db.query(`UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1`, [u.id]);
    expect((await login(u.email, 'wrong password!')).statusCode).toBe(401);
    expect((await login(u.email, PASSWORD)).statusCode).toBe(200);
  });

  it('login rate limit (LOGIN_RATE_LIMIT_MAX=3): the 4th attempt for one email is 429 with Retry-After; another email is not limited', async () => {
    const target = await createUser(app);
    const bystander = await createUser(app);
    const limited = await createTestStack(tdb.db, { LOGIN_RATE_LIMIT_MAX: '3' });
    try {
      const on = limited.app;
      for (let i = 0; i < 3; i++) expectBadCredentials(await login(target.email, `wrong password ${i}`, on));
      // The right password does not get through either, nor a change of case.
      for (const email of [target.email, target.email.toUpperCase()]) {
        const res = await login(email, PASSWORD, on);
        expectError(res, 429, 'rate_limited');
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      // Same client IP, another email: counted apart.
      expectBadCredentials(await login(bystander.email, 'wrong password', on));
      expect((await login(bystander.email, PASSWORD, on)).statusCode).toBe(200);
      // The limit is per window, not a lockout: the account itself is fine (3 failures < 5).
      expect((await login(target.email, PASSWORD)).statusCode).toBe(200);
    } finally {
      await limited.app.close();
    }
  });
});
