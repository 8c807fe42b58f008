import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { AppError } from '../../shared/errors.js';
import * as s from './schemas.js';
import type { AuthService } from './service.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  /** Stricter limit for the credential endpoints than for the rest of the API. */
  rateLimit: { max: number; timeWindow: number };
  /** Sign-in attempts for one client IP and email together. */
  loginRateLimit: { max: number; timeWindow: number };
}

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

  app.post(
    '/auth/login',
    {
      config: strict,
      preHandler: loginLimit,
      schema: {
        tags,
        summary: 'Sign in with email and password',
        description:
          'Returns a 15-minute access token and a 30-day refresh token. Five attempts a minute per address and email; after five failures in a row the account is locked for 15 minutes, answered exactly like a wrong password.',
        body: s.loginBody,
        response: { 200: data(s.loginResult), ...errors(400, 401, 404, 429) },
      },
    },
    async (req) => ({ data: await auth.login(req.body) }),
  );

  app.post(
    '/auth/refresh',
    {
      config: strict,
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (rotation)',
        description: 'The presented refresh token stops working. Presenting it again revokes the session.',
        body: s.refreshBody,
        response: { 200: data(s.tokenPair), ...errors(400, 401, 429) },
      },
    },
    async (req) => ({ data: await auth.refresh(req.body.refreshToken) }),
  );

  app.post(
    '/auth/logout',
    {
      config: strict,
      schema: {
        tags,
        summary: 'End the session a refresh token belongs to',
        body: s.refreshBody,
        response: { 204: z.null().describe('Signed out'), ...errors(400, 429) },
      },
    },
    async (req, reply) => {
      await auth.logout(req.body.refreshToken);
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
