import { randomUUID } from 'node:crypto';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler } from 'fastify-type-provider-zod';
import type { DestinationStream } from 'pino';
import type { Container } from './composition.js';
import type { Config } from './config.js';
import { apiKeyRoutes } from './modules/api-keys/routes.js';
import { requestOrigin } from './modules/audit/context.js';
import { auditRoutes } from './modules/audit/routes.js';
import { authorization } from './modules/auth/guard.js';
import { authentication } from './modules/auth/plugin.js';
import { authRoutes } from './modules/auth/routes.js';
import { authorRoutes } from './modules/authors/routes.js';
import { contentApiPrefixes, contentApiRoutes } from './modules/content-api/routes.js';
import { contentKeyRoutes } from './modules/content-keys/routes.js';
import { exportRoutes } from './modules/exports/routes.js';
import { feedPrefixes, feedRoutes } from './modules/feeds/routes.js';
import { healthRoutes } from './modules/health/routes.js';
import { jobRoutes } from './modules/jobs/routes.js';
import { postRoutes } from './modules/posts/routes.js';
import { searchRoutes } from './modules/search/routes.js';
import { ssoRoutes } from './modules/sso/routes.js';
import { tagRoutes } from './modules/tags/routes.js';
import { tenantResolution } from './modules/tenants/plugin.js';
import { tenantRoutes } from './modules/tenants/routes.js';
import { errorHandler, frameworkErrors } from './platform/http/error-handler.js';
import { serializerCompiler } from './platform/http/serializer.js';
import { rejectUnstorableText } from './platform/http/text-guard.js';
import { loggerOptions } from './platform/logging/logger.js';
import { AppError } from './shared/errors.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface BuildAppOptions {
  config: Config;
  container: Container;
  /** Overrides the configured logger (tests pass `false`). */
  logger?: FastifyServerOptions['logger'];
  /** Where the configured logger writes (default stdout); tests read what it wrote. */
  logStream?: DestinationStream;
}

/** The whole boot order in one place: external plugins, our support plugins, routes, handlers. */
export async function buildApp({ config, container, logger, logStream }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger ?? loggerOptions(config, logStream),
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    // Our own id unless the caller sent a well-formed one (it then ties their logs to ours).
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('preValidation', rejectUnstorableText);

  await app.register(errorHandler);
  await app.register(requestOrigin);
  await app.register(cookie);
  if (config.maxEventLoopDelayMs > 0) {
    // Load shedding: while the event loop lags, answer 503 at once rather than queue more work.
    await app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      pressureHandler: async (req, reply) => {
        if (req.url.startsWith('/health/live')) return;
        reply.header('retry-after', '5');
        throw new AppError(503, 'overloaded', 'The server is overloaded; retry in a few seconds');
      },
    });
  }
  await app.register(helmet, { global: true });
  const apiCors = {
    origin: config.corsOrigins.length ? config.corsOrigins : false,
    credentials: true,
    // @fastify/cors 11 allows only GET, HEAD and POST by default; the API also takes these.
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    exposedHeaders: [
      'x-request-id',
      'etag',
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
    ],
  };
  // Public content (the Content API, feeds) is read from any site's browser: any origin, no
  // credentials, and the Accept-Version header Ghost clients send.
  const publicCors = {
    origin: '*',
    credentials: false,
    methods: ['GET', 'HEAD'],
    allowedHeaders: ['accept-version', 'content-type', 'if-none-match'],
    exposedHeaders: ['etag', 'content-version', 'x-request-id'],
    maxAge: 86_400,
  };
  const feedPaths = /^\/(rss\/?|atom\.xml|feed\.json|sitemap\.xml|robots\.txt|llms\.txt)(\?|$)/;
  const isPublicPath = (url: string) => url.startsWith('/ghost/') || url.startsWith('/s/') || feedPaths.test(url);
  await app.register(
    cors,
    () => (req: { url?: string }, cb: (err: Error | null, o: object) => void) =>
      cb(null, isPublicPath(req.url ?? '') ? publicCors : apiCors),
  );
  await app.register(rateLimit, {
    global: true,
    // The standard RateLimit-Limit / -Remaining / -Reset headers (IETF draft), not the X- ones.
    enableDraftSpec: true,
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.windowMs,
    // With Redis every instance counts against the same limit; if Redis fails, requests pass
    // rather than fail (the limiter is a guard, not a dependency).
    ...(container.rateLimitRedis
      ? { redis: container.rateLimitRedis, nameSpace: `${config.redis?.keyPrefix ?? 'quire'}:rl:`, skipOnError: true }
      : {}),
    errorResponseBuilder: (_req, ctx) =>
      new AppError(429, 'rate_limited', `Too many requests; retry in ${Math.ceil(ctx.ttl / 1000)} s`),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Quire API',
        version: '1.0.0',
        description:
          'Multi-tenant blog platform. Errors: `{ "error": { "code", "message", "details"?, "requestId" } }`. Tenant routes take `X-Tenant-ID`.',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A 15-minute access token; an admin API key (`qak_…`) is also accepted here',
          },
          apiKeyAuth: {
            type: 'apiKey',
            in: 'header',
            name: 'X-API-Key',
            description: "An organization's admin API key, on the routes its scopes allow",
          },
        },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const { services } = container;
  await app.register(authentication, {
    auth: services.auth,
    apiKeys: services.apiKeys,
    apiKeyRateLimit: { max: config.rateLimit.apiKeyMax, timeWindow: config.rateLimit.windowMs },
  });
  const memberRole = async (userId: string, tenantId: string) =>
    (await services.auth.me(userId)).memberships.find((m) => m.tenantId === tenantId)?.role ?? null;
  await app.register(authorization, {
    memberRole,
    requiresMfa: (tenantId) => services.tenants.requiresMfa(tenantId),
    isPlatformAdmin: (userId) => services.auth.isPlatformAdmin(userId),
  });
  await app.register(tenantResolution, {
    tenants: services.tenants,
    baseHost: config.baseHost,
    tenantRateLimit: { max: config.rateLimit.tenantMax, timeWindow: config.rateLimit.windowMs },
    isMember: async (userId, tenantId) => (await memberRole(userId, tenantId)) !== null,
  });

  await app.register(healthRoutes, { checks: container.readinessChecks });
  app.get('/.well-known/jwks.json', { schema: { hide: true } }, async (_req, reply) =>
    reply.header('cache-control', 'public, max-age=300').send(services.auth.jwks()),
  );
  for (const prefix of contentApiPrefixes) {
    await app.register(contentApiRoutes, {
      prefix,
      content: services.content,
      contentKeys: services.contentKeys,
      tenants: services.tenants,
      publicCache: container.publicCache,
      search: services.search,
      baseHost: config.baseHost,
    });
  }
  for (const prefix of feedPrefixes) {
    await app.register(feedRoutes, {
      prefix,
      feeds: services.feeds,
      tenants: services.tenants,
      publicCache: container.publicCache,
      baseHost: config.baseHost,
    });
  }
  await app.register(
    async (api) => {
      await api.register(authRoutes, {
        auth: services.auth,
        mfa: services.mfa,
        sso: services.sso,
        publicUrl: config.publicUrl,
        rateLimit: { max: config.rateLimit.authMax, timeWindow: config.rateLimit.windowMs },
        loginRateLimit: { max: config.rateLimit.loginMax, timeWindow: config.rateLimit.windowMs },
        cookiePath: '/api/v1/auth',
        refreshTokenTtlSeconds: config.auth.refreshTokenTtlDays * 86_400,
      });
      await api.register(tenantRoutes, { tenants: services.tenants });
      await api.register(postRoutes, { posts: services.posts });
      await api.register(postRoutes, { posts: services.pages });
      await api.register(tagRoutes, { tags: services.tags });
      await api.register(searchRoutes, { search: services.search });
      await api.register(authorRoutes, { authors: services.authors });
      await api.register(auditRoutes, { audit: services.audit });
      await api.register(contentKeyRoutes, { contentKeys: services.contentKeys });
      await api.register(apiKeyRoutes, { apiKeys: services.apiKeys });
      await api.register(ssoRoutes, { sso: services.sso });
      await api.register(jobRoutes, { jobs: services.jobs, auth: services.auth });
      await api.register(exportRoutes, { exports: services.exports });
    },
    { prefix: '/api/v1' },
  );
  if ('queues' in container.queue) {
    // Bull Board (and what it brings) is loaded only in BullMQ mode.
    const { queueDashboard } = await import('./modules/jobs/dashboard.js');
    await queueDashboard(app, {
      queues: [...(container.queue.queues as Map<string, Queue>).values()],
      auth: services.auth,
    });
  }
  return app;
}
