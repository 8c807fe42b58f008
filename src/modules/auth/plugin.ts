import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ApiKeyScope } from '../../platform/db/schema.js';
import { AppError, unauthorized } from '../../shared/errors.js';
import { type ApiKeysService, looksLikeApiKey } from '../api-keys/service.js';
import { currentOrigin } from '../audit/context.js';
import type { AuthService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.authenticate`. */
    auth: {
      userId: string;
      tenantId?: string;
      sessionId?: string;
      /** How the person signed in (`pwd`, `otp`, `sso`); absent for API keys. */
      amr?: string[];
      /** Set when an admin API key authenticated the request (it acts for `userId`, its creator). */
      apiKey?: { id: string; tenantId: string; scopes: ApiKeyScope[] };
    } | null;
  }
  interface FastifyInstance {
    /** preHandler: a valid `Authorization: Bearer <access token or API key>`, or `X-API-Key`. */
    authenticate: (request: FastifyRequest) => Promise<void>;
    /** preHandler (after authenticate): the caller has confirmed their email address (else 403). */
    requireVerifiedEmail: (request: FastifyRequest) => Promise<void>;
  }
}

/**
 * Authentication, exposed as one preHandler: a person's access token (`Authorization: Bearer`),
 * or an admin API key (`Authorization: Bearer qak_…` or `X-API-Key`). Each key has its own
 * request budget (its own limit, or `apiKeyRateLimit.max`), on top of the per-IP and per-tenant ones.
 */
export const authentication = fp(
  async (
    app: FastifyInstance,
    opts: { auth: AuthService; apiKeys: ApiKeysService; apiKeyRateLimit: { max: number; timeWindow: number } },
  ) => {
    const keyCounters = new Map<number, ReturnType<FastifyInstance['createRateLimit']>>();
    const keyCounter = (max: number) => {
      let counter = keyCounters.get(max);
      if (!counter) {
        counter = app.createRateLimit({
          max,
          timeWindow: opts.apiKeyRateLimit.timeWindow,
          keyGenerator: (req) => `api-key:${req.auth?.apiKey?.id ?? ''}`,
        });
        keyCounters.set(max, counter);
      }
      return counter;
    };

    async function authenticateKey(request: FastifyRequest, key: string) {
      const principal = await opts.apiKeys.authenticate(key);
      if (!principal) throw unauthorized('API key is invalid, revoked or expired', 'invalid_api_key');
      request.auth = {
        userId: principal.userId,
        tenantId: principal.tenantId,
        apiKey: { id: principal.id, tenantId: principal.tenantId, scopes: principal.scopes },
      };
      const origin = currentOrigin();
      if (origin) origin.apiKeyId = principal.id;
      const budget = await keyCounter(principal.rateLimitPerMinute ?? opts.apiKeyRateLimit.max)(request);
      if (!budget.isAllowed && budget.isExceeded) {
        throw new AppError(
          429,
          'api_key_rate_limited',
          `This API key made too many requests; retry in ${budget.ttlInSeconds} s`,
          undefined,
          { 'retry-after': String(budget.ttlInSeconds) },
        );
      }
    }

    app.decorateRequest('auth', null);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const apiKeyHeader = request.headers['x-api-key'];
      if (apiKeyHeader !== undefined) {
        if (header) throw unauthorized('Send either Authorization or X-API-Key, not both', 'invalid_token');
        if (typeof apiKeyHeader !== 'string') throw unauthorized('X-API-Key must be one key', 'invalid_api_key');
        return authenticateKey(request, apiKeyHeader);
      }
      if (!header) throw unauthorized();
      const [scheme, token, extra] = header.split(' ');
      if (scheme?.toLowerCase() !== 'bearer' || !token || extra !== undefined) {
        throw unauthorized('Authorization must be "Bearer <access token or API key>"', 'invalid_token');
      }
      if (looksLikeApiKey(token)) return authenticateKey(request, token);
      const claims = opts.auth.verifyAccessToken(token);
      if (claims.sid && !(await opts.auth.isSessionLive(claims.sub, claims.sid))) {
        throw unauthorized('This session was signed out; sign in again', 'invalid_token');
      }
      request.auth = { userId: claims.sub, tenantId: claims.tid, sessionId: claims.sid, amr: claims.amr ?? ['pwd'] };
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
