import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, unauthorized } from '../../shared/errors.js';
import type { AuthService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.authenticate`. */
    auth: { userId: string; tenantId?: string; sessionId?: string } | null;
  }
  interface FastifyInstance {
    /** preHandler: requires a valid `Authorization: Bearer <access token>`. */
    authenticate: (request: FastifyRequest) => Promise<void>;
    /** preHandler (after authenticate): the caller has confirmed their email address (else 403). */
    requireVerifiedEmail: (request: FastifyRequest) => Promise<void>;
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
      request.auth = { userId: claims.sub, tenantId: claims.tid, sessionId: claims.sid };
    });
    // Unverified users sign in and write drafts, but neither publish nor manage members.
    app.decorate('requireVerifiedEmail', async (request: FastifyRequest) => {
      const userId = request.auth?.userId;
      if (!userId) throw new Error('requireVerifiedEmail needs authenticate first');
      if (!(await opts.auth.isEmailVerified(userId))) {
        throw new AppError(
          403,
          'email_unverified',
          'Confirm your email address first (see POST /auth/resend-verification)',
        );
      }
    });
  },
  { name: 'quire-authentication' },
);
