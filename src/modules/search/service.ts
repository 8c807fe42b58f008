import type { Database, TenantContext } from '../../platform/db/index.js';
import type { PostType } from '../../platform/db/schema.js';
import {
  MAX_LIMIT,
  MAX_OFFSET,
  normalizeQuery,
  type SearchEngine,
  type SearchHit,
} from '../../platform/search/index.js';
import { inTenant } from '../../shared/tenant-scope.js';
import { GhostError, pagination } from '../content-api/ghost.js';
import { readSite } from '../content-api/repository.js';
import { surrogateKey } from '../delivery/events.js';
import type { PublicSearchParams } from './schemas.js';

export interface SearchServiceDeps {
  db: Database;
  engine: SearchEngine;
  /** A publication's address from its slug, no trailing slash (the Content API's siteUrl). */
  siteUrl: (slug: string) => string;
}

const PUBLIC_DEFAULT_LIMIT = 15;

const bad = (message: string, context: string, property: string) =>
  new GhostError('BadRequestError', message, context, property);

function positive(s: string | undefined, fallback: number, property: string, max: number): number {
  if (s === undefined || s === '') return fallback;
  if (property === 'limit' && s === 'all') return max;
  if (!/^\d{1,6}$/.test(s) || Number(s) < 1) {
    throw bad('Validation error, cannot search.', `${property} must be a positive integer`, property);
  }
  return Math.min(Number(s), max);
}

function typesOf(s: string | undefined): PostType[] | undefined {
  if (s === undefined || s === '') return undefined;
  const types = s.split(',').map((t) => t.trim());
  if (!types.every((t): t is PostType => t === 'post' || t === 'page')) {
    throw bad('Validation error, cannot search.', 'type must be post, page or post,page', 'type');
  }
  return types;
}

const staffHit = (h: SearchHit) => ({ ...h, publishedAt: h.publishedAt?.toISOString() ?? null });

/**
 * Search for staff (every status, in the Quire envelope) and for readers (published only, in
 * the Content API's Ghost-style envelope). Both run inside the tenant's row-level-security scope
 * and hand the engine that transaction; which engine it is, is the composition root's choice.
 */
export function createSearchService(deps: SearchServiceDeps) {
  const { db, engine } = deps;

  return {
    engine: engine.kind,

    /** GET /api/v1/search: any member with posts:read; drafts, scheduled and archived included. */
    staff: (ctx: TenantContext, input: { q: string; limit: number; offset: number; type?: PostType }) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        const r = await engine.search(
          { tenantId: ctx.tenantId, tx },
          {
            q: input.q,
            limit: input.limit,
            offset: input.offset,
            publicOnly: false,
            types: input.type ? [input.type] : undefined,
          },
        );
        return { data: r.hits.map(staffHit), meta: { total: r.total } };
      }),

    /**
     * GET /ghost/api/content/search/ (a Quire extension of the Content API): what is published,
     * shaped like Ghost's browse responses, with the surrogate keys of the posts it shows.
     */
    async publicSearch(tenantId: string, params: PublicSearchParams) {
      const q = normalizeQuery(params.q ?? '');
      if (!q) throw bad('Validation error, cannot search.', 'q is required: the text to search for', 'q');
      const limit = positive(params.limit, PUBLIC_DEFAULT_LIMIT, 'limit', MAX_LIMIT);
      const page = positive(params.page, 1, 'page', Math.floor(MAX_OFFSET / limit) + 1);
      const types = typesOf(params.type);
      return db.withTenant({ tenantId, userId: null }, async (tx) => {
        const site = await readSite(tx, tenantId);
        if (!site) throw new GhostError('NotFoundError', 'Site not found.');
        const url = deps.siteUrl(site.slug);
        const r = await engine.search(
          { tenantId, tx },
          { q, limit, offset: (page - 1) * limit, publicOnly: true, types },
        );
        return {
          body: {
            posts: r.hits.map((h) => ({
              id: h.id,
              type: h.type,
              title: h.title,
              slug: h.slug,
              url: `${url}/${h.slug}/`,
              excerpt: h.excerpt,
              snippet: h.snippet,
              published_at: h.publishedAt?.toISOString() ?? null,
            })),
            meta: { pagination: pagination(page, limit, r.total) },
          },
          keys: r.hits.map((h) => surrogateKey.post(h.id)),
        };
      });
    },
  };
}

export type SearchService = ReturnType<typeof createSearchService>;
