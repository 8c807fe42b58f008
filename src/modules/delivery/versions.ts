import { randomBytes } from 'node:crypto';
import type { Cache } from '../../platform/cache/index.js';

/**
 * A per-tenant content version, part of every cached public response's key: bumping it makes
 * every cached response of the tenant unreachable at once, on every instance (the version lives
 * in the cache port, whose invalidation reaches every instance's L1). A version lost to eviction
 * is only a fresh one: a few cache misses, never a stale read.
 */
export interface ContentVersions {
  current(tenantId: string): Promise<string>;
  bump(tenantId: string): Promise<void>;
}

const keyOf = (tenantId: string) => `content-version:${tenantId}`;

export function createContentVersions(cache: Cache): ContentVersions {
  return {
    current: (tenantId) =>
      cache.getOrLoad(keyOf(tenantId), async () => randomBytes(6).toString('hex'), {
        ttlSeconds: 86_400,
        staleSeconds: 0,
      }),
    bump: (tenantId) => cache.invalidate(keyOf(tenantId)),
  };
}
