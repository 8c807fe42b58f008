import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';

/**
 * The cache port. One implementation, layered: an in-process LRU (L1) in front of an optional
 * shared tier (L2, Redis) in front of the source. Without a shared tier it is L1 alone, which
 * is all a single instance needs. Both configurations pass test/platform/cache.contract.test.ts.
 *
 * Stampede protection, three ways:
 * - one load per key per process (concurrent callers share the promise);
 * - one load per key across instances (a lock in the shared tier, SET NX PX; the others wait
 *   for the winner's value and load themselves only if it never comes);
 * - entries are served stale for a while after they expire and refreshed in the background
 *   (stale-while-revalidate), and are refreshed early with a probability that grows as expiry
 *   nears, scaled by how long the load takes (XFetch), so hot keys rarely expire at all.
 */
export interface Cache {
  getOrLoad<T>(key: string, load: () => Promise<T>, opts?: CacheLoadOptions): Promise<T>;
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, opts?: CacheLoadOptions): Promise<void>;
  /** Drops keys here, in the shared tier and in every other instance's L1. */
  invalidate(...keys: string[]): Promise<void>;
  stats(): CacheStats;
  close(): Promise<void>;
}

export interface CacheLoadOptions {
  ttlSeconds?: number;
  /** How long past expiry a value may still be served while it is refreshed. */
  staleSeconds?: number;
}

export interface CacheStats {
  l1Hits: number;
  l2Hits: number;
  misses: number;
  loads: number;
  staleServed: number;
  earlyRefreshes: number;
  invalidationsReceived: number;
}

/** The shared tier: Redis in production (./redis.ts); anything that can store, lock and broadcast. */
export interface SharedTier {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  del(keys: string[]): Promise<void>;
  /** SET NX PX: a token if this caller now holds the lock, null if another does. */
  lock(key: string, ttlMs: number): Promise<string | null>;
  unlock(key: string, token: string): Promise<void>;
  publishInvalidation(keys: string[]): Promise<void>;
  onInvalidation(listener: (keys: string[]) => void): Promise<void>;
  close(): Promise<void>;
}

interface Entry {
  v: unknown;
  /** Fresh until (epoch ms). */
  f: number;
  /** Servable (stale) until. */
  s: number;
  /** How long the load took, ms: XFetch scales early refresh by it. */
  d: number;
}

export interface CacheOptions {
  shared?: SharedTier;
  l1MaxEntries: number;
  /** Upper bound on L1 lifetime: how stale an instance can be if an invalidation is missed. */
  l1TtlSeconds: number;
  defaultTtlSeconds: number;
  defaultStaleSeconds?: number;
  /** How long a loader may hold the cross-instance lock, and how long the others wait for it. */
  lockTtlMs?: number;
  /** XFetch's beta: above 1 favours earlier refreshes. */
  earlyExpiryBeta?: number;
  onError?: (err: unknown, where: string) => void;
}

export function createCache(opts: CacheOptions): Cache {
  const shared = opts.shared;
  const lockTtlMs = opts.lockTtlMs ?? 5_000;
  const beta = opts.earlyExpiryBeta ?? 1;
  const onError = opts.onError ?? (() => {});
  const l1 = new LRUCache<string, Entry>({ max: opts.l1MaxEntries, ttl: opts.l1TtlSeconds * 1000 });
  const inflight = new Map<string, Promise<unknown>>();
  // Bumped on invalidation: a load that started before it must not write its (old) value.
  const generation = new Map<string, number>();
  const stats: CacheStats = {
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
    loads: 0,
    staleServed: 0,
    earlyRefreshes: 0,
    invalidationsReceived: 0,
  };

  let epoch = 0;
  const genOf = (key: string) => `${epoch}:${generation.get(key) ?? 0}`;

  function dropLocal(keys: string[]) {
    if (keys.includes(ALL_KEYS)) {
      l1.clear();
      epoch++;
      return;
    }
    for (const k of keys) {
      l1.delete(k);
      generation.set(k, (generation.get(k) ?? 0) + 1);
    }
  }

  const subscribed = shared?.onInvalidation((keys) => {
    stats.invalidationsReceived++;
    dropLocal(keys);
  });
  subscribed?.catch((err) => onError(err, 'subscribe'));

  async function readShared(key: string): Promise<Entry | undefined> {
    if (!shared) return undefined;
    try {
      const raw = await shared.get(key);
      return raw ? (JSON.parse(raw) as Entry) : undefined;
    } catch (err) {
      onError(err, 'get');
      return undefined;
    }
  }

  async function lookup(key: string): Promise<Entry | undefined> {
    const local = l1.get(key);
    if (local) {
      stats.l1Hits++;
      return local;
    }
    const remote = await readShared(key);
    if (remote && remote.s > Date.now()) {
      stats.l2Hits++;
      l1.set(key, remote, { ttl: Math.min(opts.l1TtlSeconds * 1000, remote.s - Date.now()) });
      return remote;
    }
    return undefined;
  }

  async function store(key: string, entry: Entry) {
    const ttl = entry.s - Date.now();
    if (ttl <= 0) return;
    l1.set(key, entry, { ttl: Math.min(opts.l1TtlSeconds * 1000, ttl) });
    if (shared) {
      try {
        await shared.set(key, JSON.stringify(entry), ttl);
      } catch (err) {
        onError(err, 'set');
      }
    }
  }

  function entryFor(value: unknown, o: CacheLoadOptions | undefined, loadMs: number): Entry {
    const now = Date.now();
    const fresh = now + (o?.ttlSeconds ?? opts.defaultTtlSeconds) * 1000;
    return { v: value, f: fresh, s: fresh + (o?.staleSeconds ?? opts.defaultStaleSeconds ?? 0) * 1000, d: loadMs };
  }

  async function loadAndStore<T>(key: string, load: () => Promise<T>, o?: CacheLoadOptions): Promise<T> {
    const gen = genOf(key);
    const started = performance.now();
    stats.loads++;
    const value = await load();
    if (genOf(key) === gen) await store(key, entryFor(value, o, performance.now() - started));
    return value;
  }

  /** One load per key across instances: hold the lock and load, or wait for the holder's value. */
  async function loadOnce<T>(key: string, load: () => Promise<T>, o?: CacheLoadOptions, background = false) {
    if (!shared) return loadAndStore(key, load, o);
    let token: string | null = null;
    try {
      token = await shared.lock(key, lockTtlMs);
    } catch (err) {
      onError(err, 'lock');
      return loadAndStore(key, load, o);
    }
    if (token) {
      try {
        return await loadAndStore(key, load, o);
      } finally {
        await shared.unlock(key, token).catch((err) => onError(err, 'unlock'));
      }
    }
    if (background) return undefined;
    const deadline = Date.now() + lockTtlMs;
    let pause = 10;
    while (Date.now() < deadline) {
      await sleep(pause);
      pause = Math.min(pause * 2, 100);
      const e = await readShared(key);
      if (e && e.f > Date.now()) {
        l1.set(key, e, { ttl: Math.min(opts.l1TtlSeconds * 1000, e.s - Date.now()) });
        return e.v as T;
      }
    }
    // The holder died or is slow: load here rather than wait forever.
    return loadAndStore(key, load, o);
  }

  function singleFlight<T>(key: string, run: () => Promise<T>): Promise<T> {
    const existing = inflight.get(key);
    if (existing) return existing as Promise<T>;
    const p = run().finally(() => inflight.delete(key));
    inflight.set(key, p);
    return p;
  }

  function refreshInBackground<T>(key: string, load: () => Promise<T>, o?: CacheLoadOptions) {
    if (inflight.has(key)) return;
    singleFlight(key, () => loadOnce(key, load, o, true)).catch((err) => onError(err, 'refresh'));
  }

  return {
    async getOrLoad<T>(key: string, load: () => Promise<T>, o?: CacheLoadOptions): Promise<T> {
      const e = await lookup(key);
      const now = Date.now();
      if (e && now < e.f) {
        // XFetch: refresh early with probability rising as expiry nears (log of (0,1] is <= 0).
        if (now - e.d * beta * Math.log(Math.random()) >= e.f) {
          stats.earlyRefreshes++;
          refreshInBackground(key, load, o);
        }
        return e.v as T;
      }
      if (e && now < e.s) {
        stats.staleServed++;
        refreshInBackground(key, load, o);
        return e.v as T;
      }
      stats.misses++;
      return singleFlight(key, () => loadOnce(key, load, o)) as Promise<T>;
    },

    async get<T>(key: string) {
      const e = await lookup(key);
      return e && e.s > Date.now() ? (e.v as T) : undefined;
    },

    async set<T>(key: string, value: T, o?: CacheLoadOptions) {
      dropLocal([key]);
      await store(key, entryFor(value, o, 0));
    },

    async invalidate(...keys: string[]) {
      if (keys.length === 0) return;
      dropLocal(keys);
      if (!shared) return;
      try {
        await shared.del(keys);
        await shared.publishInvalidation(keys);
      } catch (err) {
        onError(err, 'invalidate');
      }
    },

    stats: () => ({ ...stats }),

    async close() {
      l1.clear();
      await shared?.close();
    },
  };
}

/** Sent on the invalidation channel (or to a listener) to mean "drop everything". */
export const ALL_KEYS = '*';

/** A lock token unique to this holder. */
export const lockToken = () => randomUUID();
