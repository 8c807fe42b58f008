import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import * as s from './schemas.js';
import type { AuthService } from './service.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  /** Stricter limit for the credential endpoints than for the rest of the API. */
  rateLimit: { max: number; timeWindow: number };
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

  app.post(
    '/auth/login',
    {
      config: strict,
      schema: {
        tags,
        summary: 'Sign in with email and password',
        description: 'Returns a 15-minute access token and a 30-day refresh token.',
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
