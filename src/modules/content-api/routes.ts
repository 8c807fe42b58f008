import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { toPayload } from '../../platform/http/error-handler.js';
import type { ContentKeysService } from '../content-keys/service.js';
import { normalizedQuery, type PublicCache } from '../delivery/http-cache.js';
import { publicSearchQuery } from '../search/schemas.js';
import type { SearchService } from '../search/service.js';
import type { TenantsService } from '../tenants/service.js';
import { GhostError, type GhostErrorType, ghostErrorBody } from './ghost.js';
import type { ContentApiService, ContentParams, ReadBy, Resource } from './service.js';

export interface ContentApiRouteOptions {
  content: ContentApiService;
  contentKeys: ContentKeysService;
  tenants: TenantsService;
  publicCache: PublicCache;
  /** Search over published content (`/search/`, a Quire extension). */
  search: SearchService;
  baseHost?: string;
}

// Ghost's parameters (others are ignored, as Ghost ignores them); bounded so no request is huge.
const params = {
  key: z.string().max(64).optional(),
  limit: z.string().max(10).optional(),
  page: z.string().max(10).optional(),
  order: z.string().max(200).optional(),
  include: z.string().max(200).optional(),
  fields: z.string().max(500).optional(),
  formats: z.string().max(100).optional(),
  filter: z.string().max(2_000).optional(),
};
const query = z.object(params);
// The prefix's own parameters are declared too: a schema drops what it does not name, and the
// site's slug must survive validation (else a read would fall back to the key's tenant).
const prefixParams = { tenantSlug: z.string().max(100).optional(), apiVersion: z.string().max(20).optional() };
const slugParam = z.object({ ...prefixParams, slug: z.string().min(1).max(191) });
const idParam = z.object({ ...prefixParams, id: z.string().min(1).max(64) });

const typeOfStatus: Record<number, GhostErrorType> = {
  400: 'BadRequestError',
  401: 'UnauthorizedError',
  403: 'NoPermissionError',
  404: 'NotFoundError',
  422: 'ValidationError',
  429: 'TooManyRequestsError',
};

/** Any error on this surface in Ghost's envelope, never with internals. */
function toGhostError(err: Error): GhostError {
  if (err instanceof GhostError) return err;
  const p = toPayload(err);
  if (p.status >= 500) return new GhostError('InternalServerError', 'An unexpected error occurred, please try again.');
  return new GhostError(
    typeOfStatus[p.status] ?? 'BadRequestError',
    p.message,
    p.details ? JSON.stringify(p.details) : null,
  );
}

/**
 * Ghost's Content API for one tenant, registered under `/ghost/api/content`, the legacy
 * `/ghost/api/{v2,v3,v4,v5,canary}/content`, and the same under `/s/:tenantSlug` (path-prefixed
 * sites). The tenant is the subdomain's or the prefix's, else the key's; a key of another
 * tenant is unknown here (401), a missing key is 403, exactly as Ghost answers.
 */
export async function contentApiRoutes(fastify: FastifyInstance, opts: ContentApiRouteOptions) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const suffix = opts.baseHost ? `.${opts.baseHost.split(':')[0]}` : undefined;

  app.setErrorHandler((err: Error, req, reply) => {
    const g = toGhostError(err);
    if (g.statusCode >= 500) req.log.error({ err }, 'content API request failed');
    return reply
      .code(g.statusCode)
      .type('application/json; charset=utf-8')
      .header('cache-control', 'no-cache, private')
      .serializer(JSON.stringify)
      .send(ghostErrorBody(g));
  });
  app.setNotFoundHandler((_req, reply) =>
    reply
      .code(404)
      .type('application/json; charset=utf-8')
      .serializer(JSON.stringify)
      .send(ghostErrorBody(new GhostError('NotFoundError', 'Resource not found'))),
  );

  app.addHook('onRequest', async (req, reply) => {
    reply.header('content-version', 'v5.0');
    const v = (req.params as { apiVersion?: string }).apiVersion;
    if (v !== undefined && !/^(v[2-5]|canary)$/.test(v)) throw new GhostError('NotFoundError', 'Resource not found');
  });

  async function tenantOf(req: FastifyRequest): Promise<string> {
    const key = (req.query as { key?: string }).key;
    if (!key) {
      throw new GhostError(
        'NoPermissionError',
        'Authorization failed',
        'Unable to determine the authenticated member or integration. Check the supplied API Key and ensure cookies are being passed through if member auth is failing.',
      );
    }
    const keyTenant = await opts.contentKeys.resolve(key);
    const prefixSlug = (req.params as { tenantSlug?: string }).tenantSlug;
    const hostSlug = suffix && req.hostname.endsWith(suffix) ? req.hostname.slice(0, -suffix.length) : undefined;
    const slug = prefixSlug ?? hostSlug;
    const siteTenant = slug === undefined ? keyTenant : await opts.tenants.findIdBySlug(slug);
    if (slug !== undefined && !siteTenant) throw new GhostError('NotFoundError', 'Site not found.');
    if (!keyTenant || keyTenant !== siteTenant) throw new GhostError('UnauthorizedError', 'Unknown Content API Key');
    return keyTenant;
  }

  const send = async (
    req: FastifyRequest,
    reply: FastifyReply,
    variant: string,
    load: (tenantId: string) => Promise<{ body: unknown; keys: string[] }>,
  ) => {
    const tenantId = await tenantOf(req);
    return opts.publicCache.send(req, reply, tenantId, `ghost:${variant}`, async () => {
      const r = await load(tenantId);
      return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(r.body), keys: r.keys };
    });
  };
  const variantOf = (req: FastifyRequest) =>
    `${req.routeOptions.url}?${normalizedQuery(req.query as Record<string, unknown>)}#${JSON.stringify(req.params)}`;

  const resources: Resource[] = ['posts', 'pages', 'tags', 'authors'];
  for (const resource of resources) {
    const tags = ['content-api'];
    app.get(
      `/${resource}/`,
      { schema: { tags, summary: `Browse ${resource} (Ghost Content API)`, querystring: query } },
      (req, reply) =>
        send(req, reply, variantOf(req), (t) => opts.content.browse(resource, t, req.query as ContentParams)),
    );
    app.get(
      `/${resource}/slug/:slug/`,
      { schema: { tags, summary: `Read one of ${resource} by slug`, querystring: query, params: slugParam } },
      (req, reply) =>
        send(req, reply, variantOf(req), (t) =>
          opts.content.read(resource, t, { slug: req.params.slug } as ReadBy, req.query as ContentParams),
        ),
    );
    app.get(
      `/${resource}/:id/`,
      { schema: { tags, summary: `Read one of ${resource} by id`, querystring: query, params: idParam } },
      (req, reply) =>
        send(req, reply, variantOf(req), (t) =>
          opts.content.read(resource, t, { id: req.params.id } as ReadBy, req.query as ContentParams),
        ),
    );
  }

  // A Quire extension: full-text search of what is published (the tenant's language, typos in
  // titles forgiven), Ghost-shaped, cached and tagged like the other reads.
  app.get(
    '/search/',
    {
      schema: {
        tags: ['content-api'],
        summary: 'Search published posts and pages (Quire extension)',
        description:
          'Not in Ghost. `q` (required, web-search syntax: words, "phrase", -word, or), `limit` (≤ 50), `page`, `type` (post, page). Answers `{ posts: [{ id, type, title, slug, url, excerpt, snippet, published_at }], meta: { pagination } }`, best match first; `snippet` is HTML with `<mark>` around the matches, all else escaped.',
        querystring: publicSearchQuery,
      },
    },
    (req, reply) => send(req, reply, variantOf(req), (t) => opts.search.publicSearch(t, req.query)),
  );

  app.get(
    '/settings/',
    { schema: { tags: ['content-api'], summary: 'The publication settings', querystring: query } },
    (req, reply) => send(req, reply, 'settings', (t) => opts.content.settings(t)),
  );
  // Quire has no paid tiers or newsletters yet: Ghost clients get empty, well-formed lists.
  for (const empty of ['tiers', 'newsletters'] as const) {
    app.get(
      `/${empty}/`,
      { schema: { tags: ['content-api'], summary: `Always empty (${empty})`, querystring: query } },
      (req, reply) =>
        send(req, reply, empty, async () => ({
          body: {
            [empty]: [],
            meta: { pagination: { page: 1, limit: 15, pages: 1, total: 0, next: null, prev: null } },
          },
          keys: [],
        })),
    );
  }
}

/** Every place Ghost clients look for the Content API. */
export const contentApiPrefixes = [
  '/ghost/api/content',
  '/ghost/api/:apiVersion/content',
  '/s/:tenantSlug/ghost/api/content',
  '/s/:tenantSlug/ghost/api/:apiVersion/content',
];
