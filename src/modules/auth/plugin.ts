import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { unauthorized } from '../../shared/errors.js';
import type { AuthService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.authenticate`. */
    auth: { userId: string; tenantId?: string } | null;
  }
  interface FastifyInstance {
    /** preHandler: requires a valid `Authorization: Bearer <access token>`. */
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
}

/** Bearer-token authentication, exposed as one preHandler. */
export const authentication = fp(
  async (app: FastifyInstance, opts: { auth: AuthService }) => {
    app.decorateRequest('auth', null);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) throw unauthorized();
      const [scheme, token] = header.split(' ');
      if (scheme?.toLowerCase() !== 'bearer' || !token) {
        throw unauthorized('Authorization must be "Bearer <access token>"', 'invalid_token');
      }
      const claims = opts.auth.verifyAccessToken(token);
      request.auth = { userId: claims.sub, tenantId: claims.tid };
    });
  },
  { name: 'quire-authentication' },
);
