import type { FastifyInstance, FastifyRequest } from 'fastify';
import { toPayload } from '../../platform/http/error-handler.js';
import { notFound } from '../../shared/errors.js';
import type { PublicCache } from '../delivery/http-cache.js';
import type { TenantsService } from '../tenants/service.js';
import { type FeedKind, type FeedsService, feedContentTypes } from './service.js';

export interface FeedRouteOptions {
  feeds: FeedsService;
  tenants: Pick<TenantsService, 'findIdBySlug'>;
  publicCache: PublicCache;
  baseHost?: string;
}

/** A tenant slug as tenants are created with (DNS-label rules, lower case): others are never looked up. */
const TENANT_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const documents: { path: string; kind: FeedKind; summary: string }[] = [
  { path: '/rss/', kind: 'rss', summary: 'RSS 2.0 feed of the newest posts, with full content' },
  { path: '/atom.xml', kind: 'atom', summary: 'Atom 1.0 feed of the newest posts' },
  { path: '/feed.json', kind: 'json', summary: 'JSON Feed 1.1 of the newest posts' },
  { path: '/sitemap.xml', kind: 'sitemap', summary: 'Sitemap: published posts, pages, tags and authors' },
  { path: '/robots.txt', kind: 'robots', summary: 'robots.txt, pointing at the sitemap' },
  { path: '/llms.txt', kind: 'llms', summary: 'llms.txt (llmstxt.org): the publication for language models' },
];

/**
 * A tenant's feeds and discovery documents (RSS, Atom, JSON Feed, sitemap.xml, robots.txt,
 * llms.txt). Registered twice: under `/s/:tenantSlug` (path-prefixed sites), and at the root
 * for the tenant's host, `<slug>.<BASE_HOST>`; the root without a tenant subdomain is a 404.
 * Every response goes through the public cache (ETag and 304, CDN headers, surrogate keys,
 * cached under the tenant's content version); query parameters are ignored.
 */
export async function feedRoutes(app: FastifyInstance, opts: FeedRouteOptions) {
  const { feeds } = opts;
  const suffix = opts.baseHost ? `.${opts.baseHost.split(':')[0]!.toLowerCase()}` : undefined;

  // Readers get short text, never the API's JSON envelope or internals.
  app.setErrorHandler((err: Error, req, reply) => {
    const p = toPayload(err);
    if (p.status >= 500) req.log.error({ err }, 'feed request failed');
    if (p.headers) reply.headers(p.headers);
    return reply
      .code(p.status)
      .type(feedContentTypes.text)
      .header('cache-control', 'no-cache, private')
      .send(`${p.status >= 500 ? 'Something went wrong on our side' : p.message}\n`);
  });

  async function tenantOf(req: FastifyRequest): Promise<{ tenantId: string; slug: string }> {
    const prefixSlug = (req.params as { tenantSlug?: string }).tenantSlug;
    const host = (req.hostname ?? '').toLowerCase();
    const hostSlug = suffix && host.endsWith(suffix) ? host.slice(0, -suffix.length) : undefined;
    const slug = prefixSlug ?? hostSlug;
    const tenantId = slug && TENANT_SLUG.test(slug) ? await opts.tenants.findIdBySlug(slug) : undefined;
    if (!slug || !tenantId) throw notFound('Site');
    return { tenantId, slug };
  }

  for (const { path, kind, summary } of documents) {
    app.get(path, { schema: { tags: ['feeds'], summary } }, async (req, reply) => {
      const { tenantId, slug } = await tenantOf(req);
      // The slug is in the variant: the body holds the site's address, which follows the slug.
      return opts.publicCache.send(req, reply, tenantId, `feeds:${kind}@${slug}`, () => feeds[kind](tenantId));
    });
  }
}

/** Where the feeds are served: the path-prefixed site, and the root (the tenant's own host). */
export const feedPrefixes = ['/s/:tenantSlug', ''];
