import csrfProtection from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { AppError, badRequest } from '../../shared/errors.js';
import type { SsoService } from '../sso/service.js';
import type { Mfa } from './mfa.js';
import * as s from './schemas.js';
import type { AuthService, PublicUser, TokenPair } from './service.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  mfa: Mfa;
  sso: SsoService;
  /** Stricter limit for the credential endpoints than for the rest of the API. */
  rateLimit: { max: number; timeWindow: number };
  /** Sign-in attempts for one client IP and email together. */
  loginRateLimit: { max: number; timeWindow: number };
  /** Cookie mode: where the refresh and CSRF cookies apply (the auth routes), and how long the refresh cookie lives. */
  cookiePath: string;
  refreshTokenTtlSeconds: number;
  /** Where the API is reached (the OIDC callback's base). */
  publicUrl: string;
}

const REFRESH_COOKIE = 'quire_refresh';

type Mode = 'bearer' | 'cookie' | undefined;
type Session = TokenPair & { user: PublicUser };
type Challenge = Awaited<ReturnType<Mfa['challenge']>>;
const CSRF_COOKIE = 'quire_csrf';

export async function authRoutes(fastify: FastifyInstance, opts: AuthRoutesOptions) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { auth } = opts;
  const strict = { rateLimit: opts.rateLimit };
  // Every route says who may call it (the authorization guard refuses routes that do not).
  const open = { ...strict, access: 'public' as const };
  const self = { ...strict, access: 'user' as const };
  const tags = ['auth'];

  app.post(
    '/auth/register',
    {
      config: open,
      schema: {
        tags,
        summary: 'Create an account',
        body: s.registerBody,
        response: { 201: data(z.object({ user: s.publicUser })), ...errors(400, 409, 413, 415, 429) },
      },
    },
    async (req, reply) => reply.code(201).send({ data: { user: await auth.register(req.body) } }),
  );

  // Counted per client IP and email together (the body is parsed by then): a password-guessing
  // run against one account from one address stops at the limit; the IP-wide auth limit stays.
  // Its own counter (createRateLimit): a second route-level limiter would be skipped, the request
  // being marked as already checked by the first.
  const loginCounter = app.createRateLimit({
    max: opts.loginRateLimit.max,
    timeWindow: opts.loginRateLimit.timeWindow,
    keyGenerator: (req) => {
      const body = req.body as { email?: unknown } | undefined;
      const email = typeof body?.email === 'string' ? body.email.trim().toLowerCase() : '';
      return `login:${req.ip}:${email}`;
    },
  });
  const loginLimit = async (req: FastifyRequest, reply: FastifyReply) => {
    const r = await loginCounter(req);
    if (!r.isAllowed && r.isExceeded) {
      reply.header('retry-after', String(r.ttlInSeconds));
      throw new AppError(429, 'rate_limited', `Too many sign-in attempts; retry in ${r.ttlInSeconds} s`);
    }
  };

  // Cookie mode: for browsers, the refresh token lives in an httpOnly, Secure, SameSite=Strict
  // cookie scoped to the auth routes, never readable by scripts. A request that presents it must
  // also carry the CSRF token (double submit: @fastify/csrf-protection keeps its secret in a
  // cookie of its own, the token travels in X-CSRF-Token). Bearer clients send the refresh token
  // in the body and need no CSRF token.
  const cookieOptions = {
    path: opts.cookiePath,
    httpOnly: true,
    secure: true,
    sameSite: 'strict' as const,
  };
  await app.register(csrfProtection, {
    cookieKey: CSRF_COOKIE,
    cookieOpts: cookieOptions,
    getToken: (req) => {
      const h = req.headers['x-csrf-token'];
      return typeof h === 'string' ? h : undefined;
    },
  });
  const setRefreshCookie = (reply: FastifyReply, token: string) =>
    reply.setCookie(REFRESH_COOKIE, token, { ...cookieOptions, maxAge: opts.refreshTokenTtlSeconds });
  /** A new session as the client asked for it (cookie mode: the refresh token as a cookie, plus a CSRF token); challenges as they are. */
  function sessionReply(reply: FastifyReply, mode: Mode, result: Session): z.infer<typeof s.session>;
  function sessionReply(reply: FastifyReply, mode: Mode, result: Session | Challenge): z.infer<typeof s.loginResult>;
  function sessionReply(reply: FastifyReply, mode: Mode, result: Session | Challenge): z.infer<typeof s.loginResult> {
    if (mode !== 'cookie' || !('refreshToken' in result)) return result;
    const { refreshToken, ...rest } = result;
    setRefreshCookie(reply, refreshToken);
    return { ...rest, csrfToken: reply.generateCsrf() };
  }
  /** The refresh token of a request: the body's (bearer clients), else the cookie's. */
  const refreshTokenOf = (req: FastifyRequest) => {
    const body = req.body as { refreshToken?: string } | null | undefined;
    if (body?.refreshToken) return { token: body.refreshToken, cookie: false };
    const token = req.cookies[REFRESH_COOKIE];
    if (!token)
      throw badRequest('refresh_token_required', 'Send the refresh token in the body, or sign in in cookie mode');
    return { token, cookie: true };
  };
  /** preHandler: a request that uses the refresh cookie must pass the CSRF check (a 403 otherwise). */
  const csrfWhenCookie = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const body = req.body as { refreshToken?: string } | null | undefined;
    if (body?.refreshToken || !req.cookies[REFRESH_COOKIE]) return done();
    return app.csrfProtection(req, reply, done);
  };

  app.post(
    '/auth/login',
    {
      config: open,
      preHandler: loginLimit,
      schema: {
        tags,
        summary: 'Sign in with email and password',
        description:
          'Returns a 15-minute access token and a 30-day refresh token (with `mode: "cookie"`, the refresh token is set as an httpOnly cookie instead and a `csrfToken` is returned: send it as X-CSRF-Token to /auth/refresh and /auth/logout). An account with two-factor authentication gets an `MfaChallenge` instead: complete it at POST /auth/mfa/verify. Five attempts a minute per address and email; after five failures in a row the account is locked for 15 minutes, answered exactly like a wrong password.',
        body: s.loginBody,
        response: { 200: data(s.loginResult), ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const { mode, ...credentials } = req.body;
      // People of a domain whose organization enforces single sign-on sign in only through it.
      await opts.sso.assertPasswordAllowed(credentials.email);
      return { data: sessionReply(reply, mode, await auth.login(credentials)) };
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: open,
      preHandler: csrfWhenCookie,
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (rotation)',
        description:
          'The presented refresh token stops working; presenting it again revokes the session. In cookie mode send no body token: the cookie is used, X-CSRF-Token is required, and the response sets the next cookie and returns a new csrfToken. When an organization enforces single sign-on for your email domain, a session that did not come through its provider is ended here: 403 `sso_required` (details name the sign-in to use).',
        body: s.refreshBody.nullish(),
        response: { 200: data(s.refreshResult), ...errors(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      const presented = refreshTokenOf(req);
      const pair = await auth.refresh(presented.token);
      if (!presented.cookie) return { data: pair };
      const { refreshToken, ...rest } = pair;
      setRefreshCookie(reply, refreshToken);
      return { data: { ...rest, csrfToken: reply.generateCsrf() } };
    },
  );

  app.post(
    '/auth/logout',
    {
      config: open,
      preHandler: csrfWhenCookie,
      schema: {
        tags,
        summary: 'End the session a refresh token belongs to',
        description: 'In cookie mode send no body token: the cookie is used (with X-CSRF-Token) and cleared.',
        body: s.refreshBody.nullish(),
        response: { 204: z.null().describe('Signed out'), ...errors(400, 403, 429) },
      },
    },
    async (req, reply) => {
      const presented = refreshTokenOf(req);
      await auth.logout(presented.token);
      if (presented.cookie) reply.clearCookie(REFRESH_COOKIE, cookieOptions);
      return reply.code(204).send(null);
    },
  );

  const authenticated = { preHandler: app.authenticate };
  const bearer = [{ bearerAuth: [] }];

  app.post(
    '/auth/logout-all',
    {
      ...authenticated,
      config: self,
      schema: {
        tags,
        security: bearer,
        summary: 'End every session of the signed-in user',
        description:
          'Every refresh token of the user is revoked, and access tokens already issued are refused from now on (on every instance).',
        response: { 204: z.null().describe('Signed out everywhere'), ...errors(401, 429) },
      },
    },
    async (req, reply) => {
      await auth.logoutAll(req.auth!.userId);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/sessions',
    {
      ...authenticated,
      config: self,
      schema: {
        tags,
        security: bearer,
        summary: 'Your sessions: where and when you are signed in',
        description:
          'One entry per sign-in that can still be refreshed, most recently active first; `current` marks this one.',
        response: { 200: data(z.array(s.sessionInfo)), ...errors(401, 403, 429) },
      },
    },
    async (req) => ({ data: await auth.listSessions(req.auth!.userId, req.auth!.sessionId) }),
  );

  app.delete(
    '/auth/sessions/:sessionId',
    {
      ...authenticated,
      config: self,
      schema: {
        tags,
        security: bearer,
        summary: 'Sign one session out (a lost device)',
        description:
          'Its refresh token and the access tokens already issued for it stop working at once. Another user’s session, or one that has ended, is 404.',
        params: s.sessionParams,
        response: { 204: z.null().describe('Signed out'), ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      await auth.revokeSession(req.auth!.userId, req.params.sessionId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/verify-email',
    {
      config: open,
      schema: {
        tags,
        summary: 'Confirm an email address with the token from the email',
        description:
          'Until then a user can sign in but cannot publish or manage members. Sign in (or refresh) again afterwards.',
        body: s.tokenBody,
        response: { 204: z.null().describe('Verified'), ...errors(400, 429) },
      },
    },
    async (req, reply) => {
      await auth.verifyEmail(req.body.token);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/resend-verification',
    {
      ...authenticated,
      config: self,
      schema: {
        tags,
        security: bearer,
        summary: 'Email a new verification link (the older ones stop working)',
        response: {
          202: z.undefined().describe('Sent, unless the address is verified already (no body)'),
          ...errors(401, 429),
        },
      },
    },
    async (req, reply) => {
      await auth.resendVerification(req.auth!.userId);
      return reply.code(202).send();
    },
  );

  app.post(
    '/auth/forgot-password',
    {
      config: open,
      schema: {
        tags,
        summary: 'Email a password reset link',
        description:
          'Always 202 with no body, whether or not an account has this address, and with the same work on the request path: whether to send is decided by the email job.',
        body: s.forgotPasswordBody,
        response: { 202: z.undefined().describe('Accepted (no body)'), ...errors(400, 429) },
      },
    },
    async (req, reply) => {
      await auth.forgotPassword(req.body.email);
      return reply.code(202).send();
    },
  );

  app.post(
    '/auth/reset-password',
    {
      config: open,
      schema: {
        tags,
        summary: 'Set a new password with the token from the reset email',
        description: 'The token works once, for an hour. Every session of the account ends, and a lockout is lifted.',
        body: s.resetPasswordBody,
        response: { 204: z.null().describe('Password set'), ...errors(400, 429) },
      },
    },
    async (req, reply) => {
      await auth.resetPassword(req.body.token, req.body.password);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/change-password',
    {
      ...authenticated,
      config: self,
      schema: {
        tags,
        security: bearer,
        summary: 'Change your password (needs the current one)',
        description:
          'Your other sessions end; this one stays. A wrong current password counts toward the account lock, as a wrong sign-in does; while the account is locked: 403 `account_locked`.',
        body: s.changePasswordBody,
        response: { 204: z.null().describe('Password changed'), ...errors(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      await auth.changePassword(req.auth!.userId, req.auth!.sessionId, req.body.currentPassword, req.body.newPassword);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/jwks.json',
    {
      config: { access: 'public' },
      schema: {
        tags,
        summary: 'The public keys that verify access tokens (JWKS)',
        description:
          'With asymmetric signing (JWT_PRIVATE_KEY) other services verify Quire tokens with these, by `kid`; with a shared secret the set is empty. Also at /.well-known/jwks.json.',
        response: { 200: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }), ...errors(429) },
      },
    },
    async (_req, reply) => reply.header('cache-control', 'public, max-age=300').send(auth.jwks()),
  );

  const mfaTags = ['auth', 'two-factor'];

  app.post(
    '/auth/mfa/verify',
    {
      config: open,
      schema: {
        tags: mfaTags,
        summary: 'Complete a sign-in with a code from the authenticator app, or a recovery code',
        description:
          'The challenge works once, for five minutes, and five wrong codes end it. Each TOTP code is accepted once. Returns the session as POST /auth/login does.',
        body: s.mfaVerifyBody,
        response: { 200: data(s.session), ...errors(400, 401, 413, 415, 429) },
      },
    },
    async (req, reply) => {
      const { mfaToken, mode, ...proof } = req.body;
      return { data: sessionReply(reply, mode, await auth.verifyMfa(mfaToken, proof)) };
    },
  );

  app.get(
    '/auth/mfa',
    {
      ...authenticated,
      config: self,
      schema: {
        tags: mfaTags,
        security: bearer,
        summary: 'Whether two-factor authentication is on, and how many recovery codes are left',
        response: { 200: data(s.mfaStatus), ...errors(401, 403, 429) },
      },
    },
    async (req) => ({ data: await opts.mfa.status(req.auth!.userId) }),
  );

  app.post(
    '/auth/mfa/totp/enroll',
    {
      ...authenticated,
      config: self,
      schema: {
        tags: mfaTags,
        security: bearer,
        summary: 'Start TOTP enrolment: a new secret and its otpauth:// URI (render it as a QR code)',
        description:
          'Needs the password (accounts that have one). Nothing changes for sign-in until POST /auth/mfa/totp/confirm.',
        body: s.mfaEnrollBody,
        response: {
          200: data(
            z.object({
              secret: z.string().describe('Base32, for typing into the app by hand'),
              otpauthUri: z.string().describe('otpauth://totp/…: encode it as a QR code'),
            }),
          ),
          ...errors(400, 401, 403, 409, 413, 415, 429),
        },
      },
    },
    async (req) => {
      await auth.reauthenticate(req.auth!.userId, req.body.password);
      return { data: await opts.mfa.enroll(req.auth!.userId) };
    },
  );

  app.post(
    '/auth/mfa/totp/confirm',
    {
      ...authenticated,
      config: self,
      schema: {
        tags: mfaTags,
        security: bearer,
        summary:
          'Confirm enrolment with a first code: two-factor authentication is on, and ten recovery codes are returned once',
        body: s.mfaConfirmBody,
        response: { 200: data(s.recoveryCodes), ...errors(400, 401, 403, 409, 413, 415, 429) },
      },
    },
    async (req) => {
      const recoveryCodes = await opts.mfa.confirm(req.auth!.userId, req.body.code, req.auth!.sessionId);
      // The sessions opened with the password alone ended: at once, not when their access tokens expire.
      await auth.forgetSessions(req.auth!.userId);
      return { data: { recoveryCodes } };
    },
  );

  app.post(
    '/auth/mfa/disable',
    {
      ...authenticated,
      config: self,
      schema: {
        tags: mfaTags,
        security: bearer,
        summary: 'Turn two-factor authentication off: needs the password and a code (or a recovery code)',
        description:
          'Wrong passwords and codes count toward the account lock, as wrong sign-ins do; while the account is locked: 403 `account_locked`.',
        body: s.mfaReauthBody,
        response: { 204: z.null(), ...errors(400, 401, 403, 409, 413, 415, 429) },
      },
    },
    async (req, reply) => {
      const { password, ...proof } = req.body;
      await auth.reauthenticate(req.auth!.userId, password);
      await auth.withSecondFactor(req.auth!.userId, () => opts.mfa.disable(req.auth!.userId, proof));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/mfa/recovery-codes',
    {
      ...authenticated,
      config: self,
      schema: {
        tags: mfaTags,
        security: bearer,
        summary: 'Ten new recovery codes (the old ones stop working): needs the password and a code',
        description:
          'Wrong passwords and codes count toward the account lock, as wrong sign-ins do; while the account is locked: 403 `account_locked`.',
        body: s.mfaReauthBody,
        response: { 200: data(s.recoveryCodes), ...errors(400, 401, 403, 409, 413, 415, 429) },
      },
    },
    async (req) => {
      const { password, ...proof } = req.body;
      await auth.reauthenticate(req.auth!.userId, password);
      const recoveryCodes = await auth.withSecondFactor(req.auth!.userId, () =>
        opts.mfa.regenerateRecoveryCodes(req.auth!.userId, proof),
      );
      return { data: { recoveryCodes } };
    },
  );

  // Sign-in through identity providers (authorization code + PKCE, state, nonce): the browser
  // goes to /authorize, the provider sends it back to /oidc/callback, which answers like /login.
  const OIDC_STATE_COOKIE = 'quire_oidc_state';
  const oidcTags = ['auth', 'single sign-on'];
  const authorizeQuery = z.object({ mode: s.loginBody.shape.mode });
  const redirectTo = (reply: FastifyReply, started: { url: string; state: string }) =>
    reply
      // Lax, not Strict: the provider's redirect back is a cross-site navigation that must carry it.
      .setCookie(OIDC_STATE_COOKIE, started.state, { ...cookieOptions, sameSite: 'lax', maxAge: 600 })
      .redirect(started.url, 302);

  app.get(
    '/auth/oidc/providers',
    {
      config: open,
      schema: {
        tags: oidcTags,
        summary: 'Identity providers people can sign in with (Google, GitHub, others the deployment configures)',
        response: { 200: data(z.array(z.object({ id: z.string(), name: z.string() }))), ...errors(429) },
      },
    },
    async () => ({ data: opts.sso.listProviders() }),
  );

  app.get(
    '/auth/oidc/:provider/authorize',
    {
      config: open,
      schema: {
        tags: oidcTags,
        summary: 'Start signing in with a platform identity provider: a redirect to it',
        params: z.object({ provider: z.string().regex(/^[a-z0-9-]{1,32}$/) }),
        querystring: authorizeQuery,
        response: { 302: z.null().describe('To the identity provider'), ...errors(400, 404, 429) },
      },
    },
    async (req, reply) =>
      redirectTo(reply, await opts.sso.authorize({ provider: req.params.provider }, req.query.mode ?? 'bearer')),
  );

  app.get(
    '/auth/sso/:tenantSlug/authorize',
    {
      config: open,
      schema: {
        tags: oidcTags,
        summary: "Start signing in through an organization's own identity provider: a redirect to it",
        params: z.object({ tenantSlug: z.string().regex(/^[a-z0-9-]{1,63}$/) }),
        querystring: authorizeQuery,
        response: { 302: z.null().describe('To the identity provider'), ...errors(400, 404, 429) },
      },
    },
    async (req, reply) =>
      redirectTo(reply, await opts.sso.authorize({ tenantSlug: req.params.tenantSlug }, req.query.mode ?? 'bearer')),
  );

  app.get(
    '/auth/oidc/callback',
    {
      config: open,
      schema: {
        tags: oidcTags,
        summary: 'Where identity providers send the browser back: completes the sign-in',
        description:
          'Checks the state (against the cookie set at authorize: a callback opened in another browser fails), the PKCE verifier and the ID token nonce, then signs in the account with this identity, or links the account with the same verified email, or creates one. Answers as POST /auth/login does (a session, or a second-factor challenge).',
        querystring: z.object({
          code: z.string().max(2048).optional(),
          state: z.string().max(512).optional(),
          error: z.string().max(256).optional(),
          error_description: z.string().max(2048).optional(),
          iss: z.string().max(2048).optional(),
        }),
        response: { 200: data(s.loginResult), ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const url = new URL(req.url, opts.publicUrl);
      const browserState = req.cookies[OIDC_STATE_COOKIE];
      reply.clearCookie(OIDC_STATE_COOKIE, { ...cookieOptions, sameSite: 'lax' });
      // The provider's redirect_uri is the public URL: the code is checked against exactly it.
      const callbackUrl = new URL(opts.sso.redirectUri);
      callbackUrl.search = url.search;
      const { mode, session } = await opts.sso.callback(callbackUrl, browserState);
      return { data: sessionReply(reply, mode, session) };
    },
  );

  app.get(
    '/auth/me',
    {
      config: { access: 'user' },
      preHandler: app.authenticate,
      schema: {
        tags,
        summary: 'The signed-in user and their organizations',
        security: [{ bearerAuth: [] }],
        response: { 200: data(s.meResult), ...errors(401) },
      },
    },
    async (req) => ({ data: await auth.me(req.auth!.userId) }),
  );
}
