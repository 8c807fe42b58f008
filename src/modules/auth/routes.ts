import csrfProtection from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { AppError, badRequest } from '../../shared/errors.js';
import * as s from './schemas.js';
import type { AuthService } from './service.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  /** Stricter limit for the credential endpoints than for the rest of the API. */
  rateLimit: { max: number; timeWindow: number };
  /** Sign-in attempts for one client IP and email together. */
  loginRateLimit: { max: number; timeWindow: number };
  /** Cookie mode: where the refresh and CSRF cookies apply (the auth routes), and how long the refresh cookie lives. */
  cookiePath: string;
  refreshTokenTtlSeconds: number;
}

const REFRESH_COOKIE = 'quire_refresh';
const CSRF_COOKIE = 'quire_csrf';

export async function authRoutes(fastify: FastifyInstance, opts: AuthRoutesOptions) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { auth } = opts;
  const strict = { rateLimit: opts.rateLimit };
  const tags = ['auth'];

  app.post(
    '/auth/register',
    {
      config: strict,
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
      config: strict,
      preHandler: loginLimit,
      schema: {
        tags,
        summary: 'Sign in with email and password',
        description:
          'Returns a 15-minute access token and a 30-day refresh token (with `mode: "cookie"`, the refresh token is set as an httpOnly cookie instead and a `csrfToken` is returned: send it as X-CSRF-Token to /auth/refresh and /auth/logout). Five attempts a minute per address and email; after five failures in a row the account is locked for 15 minutes, answered exactly like a wrong password.',
        body: s.loginBody,
        response: { 200: data(s.loginResult), ...errors(400, 401, 404, 429) },
      },
    },
    async (req, reply) => {
      const { mode, ...credentials } = req.body;
      const result = await auth.login(credentials);
      if (mode !== 'cookie') return { data: result };
      const { refreshToken, ...rest } = result;
      setRefreshCookie(reply, refreshToken);
      return { data: { ...rest, csrfToken: reply.generateCsrf() } };
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: strict,
      preHandler: csrfWhenCookie,
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (rotation)',
        description:
          'The presented refresh token stops working; presenting it again revokes the session. In cookie mode send no body token: the cookie is used, X-CSRF-Token is required, and the response sets the next cookie and returns a new csrfToken.',
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
      config: strict,
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
      config: strict,
      schema: {
        tags,
        security: bearer,
        summary: 'End every session of the signed-in user',
        description:
          'Every refresh token of the user is revoked; access tokens already issued lapse within 15 minutes.',
        response: { 204: z.null().describe('Signed out everywhere'), ...errors(401, 429) },
      },
    },
    async (req, reply) => {
      await auth.logoutAll(req.auth!.userId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/verify-email',
    {
      config: strict,
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
      config: strict,
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
      config: strict,
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
      config: strict,
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
      config: strict,
      schema: {
        tags,
        security: bearer,
        summary: 'Change your password (needs the current one)',
        description: 'Your other sessions end; this one stays.',
        body: s.changePasswordBody,
        response: { 204: z.null().describe('Password changed'), ...errors(400, 401, 429) },
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

  app.get(
    '/auth/me',
    {
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
