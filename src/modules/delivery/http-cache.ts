import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { Cache } from '../../platform/cache/index.js';
import { surrogateKey } from './events.js';
import type { ContentVersions } from './versions.js';

/** A public response as it is cached: the bytes, their type and the records they contain. */
export interface PublicBody {
  contentType: string;
  body: string;
  /** Surrogate keys beyond the tenant's (each post, tag and author the body contains). */
  keys: string[];
}
interface Cached extends PublicBody {
  etag: string;
}

export interface PublicCacheOptions {
  cache: Cache;
  versions: ContentVersions;
  /** s-maxage: how long a CDN may serve it. */
  sharedMaxAgeSeconds: number;
  staleSeconds: number;
}

/** Does If-None-Match name this entity tag? (Weak comparison, as RFC 9110 asks for If-None-Match.) */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => opaque(t) === opaque(etag));
}

/**
 * Public responses (Content API, feeds), built for a CDN: a strong ETag of the body (a matching
 * If-None-Match gets 304), `Cache-Control: public` with s-maxage and stale-while-revalidate,
 * and `Surrogate-Key` tags for purges. Bodies are cached through the cache port under the
 * tenant's content version, so a content change (which bumps it) is visible on the next read.
 */
export function createPublicCache(opts: PublicCacheOptions) {
  const cacheControl = `public, max-age=0, s-maxage=${opts.sharedMaxAgeSeconds}, stale-while-revalidate=${opts.staleSeconds}`;
  // The bytes of bodies being served, by ETag: a cached body is a string (it travels through
  // Redis as JSON), and encoding ~70 KB of it to UTF-8 on every send cost more than the rest of
  // a cache hit. An ETag names its bytes exactly, so this never serves a stale body.
  const bytes = new LRUCache<string, Buffer>({
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (b) => b.length || 1,
  });
  const bytesOf = (entry: Cached) => {
    let b = bytes.get(entry.etag);
    if (!b) {
      b = Buffer.from(entry.body, 'utf8');
      bytes.set(entry.etag, b);
    }
    return b;
  };
  return {
    async send(
      req: FastifyRequest,
      reply: FastifyReply,
      tenantId: string,
      /** What distinguishes this response from the tenant's others (route and normalized query). */
      variant: string,
      load: () => Promise<PublicBody>,
    ) {
      const version = await opts.versions.current(tenantId);
      const key = `public:${tenantId}:${version}:${createHash('sha256').update(variant).digest('base64url')}`;
      const entry = await opts.cache.getOrLoad<Cached>(key, async () => {
        const body = await load();
        const hash = createHash('sha256').update(body.body).digest('base64url').slice(0, 32);
        return { ...body, etag: `"${hash}"` };
      });
      reply
        .header('etag', entry.etag)
        .header('cache-control', cacheControl)
        .header('surrogate-key', [surrogateKey.tenant(tenantId), ...new Set(entry.keys)].join(' '));
      const inm = req.headers['if-none-match'];
      if (matchesEtag(typeof inm === 'string' ? inm : undefined, entry.etag)) return reply.code(304).send();
      return reply.type(entry.contentType).send(bytesOf(entry));
    },
  };
}

export type PublicCache = ReturnType<typeof createPublicCache>;

/** A request's query without the key and in a stable order: requests that differ only so share an entry. */
export function normalizedQuery(query: Record<string, unknown>, drop: string[] = ['key']): string {
  return Object.keys(query)
    .filter((k) => !drop.includes(k))
    .sort()
    .map((k) => `${k}=${String(query[k])}`)
    .join('&');
}
