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
 *   for the winner's value, taking the lock themselves if the winner gives up without one);
 * - entries are served stale for a while after they expire and refreshed in the background
 *   (stale-while-revalidate), and are refreshed early with a probability that grows as expiry
 *   nears, scaled by how long the load takes (XFetch), so hot keys rarely expire at all.
 *
 * An invalidation wins over loads under way: whoever asks after it gets a load that began after
 * it, and a load that began before it stores nothing. Cross-instance tests: cache.redis.test.ts.
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

const zeroStats = (): CacheStats => ({
  l1Hits: 0,
  l2Hits: 0,
  misses: 0,
  loads: 0,
  staleServed: 0,
  earlyRefreshes: 0,
  invalidationsReceived: 0,
});

/** No caching at all (CACHE_TTL_SECONDS=0): every read calls its loader. */
export function createPassthroughCache(): Cache {
  const stats = zeroStats();
  return {
    async getOrLoad(_key, load) {
      stats.misses++;
      stats.loads++;
      return load();
    },
    get: async () => undefined,
    set: async () => {},
    invalidate: async () => {},
    stats: () => ({ ...stats }),
    close: async () => {},
  };
}

/** What a background refresh yields when it did not load (another instance is refreshing). */
const SKIPPED = Symbol('skipped');

interface Watch {
  /** False once the key was invalidated (here or by another instance) since the watch began. */
  current(): boolean;
  release(): void;
}

export function createCache(opts: CacheOptions): Cache {
  const shared = opts.shared;
  const lockTtlMs = opts.lockTtlMs ?? 5_000;
  const beta = opts.earlyExpiryBeta ?? 1;
  const onError = opts.onError ?? (() => {});
  const l1TtlMs = opts.l1TtlSeconds * 1000;
  const l1 = new LRUCache<string, Entry>({ max: opts.l1MaxEntries, ttl: l1TtlMs });
  // Loads that callers join (one per key), and background refreshes, which may end without a
  // value. An invalidation detaches both: whoever asks after it gets a load that started after it.
  const inflight = new Map<string, Promise<unknown>>();
  const refreshing = new Map<string, Promise<unknown>>();
  // Invalidation counts of the keys being read or loaded right now: a load (or a shared-tier read)
  // that began before an invalidation must not write its (old) value. Entries live while watched.
  const watched = new Map<string, { gen: number; watchers: number }>();
  let epoch = 0;
  const stats = zeroStats();

  function watch(key: string): Watch {
    let w = watched.get(key);
    if (!w) {
      w = { gen: 0, watchers: 0 };
      watched.set(key, w);
    }
    const entry = w;
    entry.watchers++;
    const gen = entry.gen;
    const startEpoch = epoch;
    let released = false;
    return {
      current: () => entry.gen === gen && epoch === startEpoch,
      release() {
        if (released) return;
        released = true;
        if (--entry.watchers === 0) watched.delete(key);
      },
    };
  }

  function dropLocal(keys: string[]) {
    if (keys.includes(ALL_KEYS)) {
      l1.clear();
      inflight.clear();
      refreshing.clear();
      epoch++;
      return;
    }
    for (const k of keys) {
      l1.delete(k);
      inflight.delete(k);
      refreshing.delete(k);
      const w = watched.get(k);
      if (w) w.gen++;
    }
  }

  const subscribed = shared?.onInvalidation((keys) => {
    stats.invalidationsReceived++;
    dropLocal(keys);
  });
  subscribed?.catch((err) => onError(err, 'subscribe'));

  // Invalidations the shared tier refused (Redis away): until they get through, the shared copy
  // and other instances' L1 would keep the old values for their whole TTL. Retried every second.
  const undelivered = new Set<string>();
  let retry: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  async function broadcast(keys: string[]) {
    if (!shared) return;
    try {
      await shared.del(keys);
      await shared.publishInvalidation(keys);
    } catch (err) {
      onError(err, 'invalidate');
      for (const k of keys) undelivered.add(k);
      if (!retry && !closed) {
        retry = setTimeout(() => {
          retry = undefined;
          const again = [...undelivered];
          undelivered.clear();
          void broadcast(again);
        }, 1_000);
        retry.unref?.();
      }
    }
  }

  /** Keeps `entry` in L1 until it stops being servable (at most the L1 TTL). */
  function remember(key: string, entry: Entry) {
    const ttl = Math.ceil(entry.s - Date.now());
    if (ttl > 0) l1.set(key, entry, { ttl: Math.min(l1TtlMs, ttl) });
  }

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

  /** A servable entry from the shared tier (`fresh`: only one not yet expired), kept in L1 too. */
  async function fromShared(key: string, fresh: boolean): Promise<Entry | undefined> {
    if (!shared) return undefined;
    const w = watch(key);
    try {
      const e = await readShared(key);
      const now = Date.now();
      if (!e || (fresh ? e.f : e.s) <= now) return undefined;
      // Invalidated while the read was on its way: return it to this caller, but do not keep it.
      if (w.current()) remember(key, e);
      return e;
    } finally {
      w.release();
    }
  }

  async function lookup(key: string): Promise<Entry | undefined> {
    const local = l1.get(key);
    if (local) {
      stats.l1Hits++;
      return local;
    }
    const remote = await fromShared(key, false);
    if (remote) stats.l2Hits++;
    return remote;
  }

  async function store(key: string, entry: Entry, w?: Watch) {
    if (entry.s <= Date.now()) return;
    remember(key, entry);
    if (!shared) return;
    try {
      await shared.set(key, JSON.stringify(entry), entry.s - Date.now());
      // Invalidated while it was being written: the write may have landed after the
      // invalidator's delete, so delete it again rather than leave an old value shared.
      if (w && !w.current()) await shared.del([key]);
    } catch (err) {
      onError(err, 'set');
    }
  }

  function entryFor(value: unknown, o: CacheLoadOptions | undefined, loadMs: number): Entry {
    const now = Date.now();
    const fresh = now + (o?.ttlSeconds ?? opts.defaultTtlSeconds) * 1000;
    return { v: value, f: fresh, s: fresh + (o?.staleSeconds ?? opts.defaultStaleSeconds ?? 0) * 1000, d: loadMs };
  }

  async function loadAndStore<T>(key: string, load: () => Promise<T>, o?: CacheLoadOptions): Promise<T> {
    const w = watch(key);
    try {
      const started = performance.now();
      stats.loads++;
      const value = await load();
      if (w.current()) await store(key, entryFor(value, o, performance.now() - started), w);
      return value;
    } finally {
      w.release();
    }
  }

  /**
   * One load per key across instances: hold the lock and load, or wait for the holder's value.
   * Waiting callers retry the lock, so a holder whose load fails (or who dies and lets the lock
   * expire) does not leave them waiting; one that got the lock first checks whether the previous
   * holder stored the value meanwhile. A background refresh never waits: someone else is at it.
   */
  async function loadOnce<T>(
    key: string,
    load: () => Promise<T>,
    o?: CacheLoadOptions,
    background = false,
  ): Promise<T | typeof SKIPPED> {
    if (!shared) return loadAndStore(key, load, o);
    const deadline = Date.now() + lockTtlMs;
    let pause = 10;
    for (;;) {
      let token: string | null;
      try {
        token = await shared.lock(key, lockTtlMs);
      } catch (err) {
        onError(err, 'lock');
        return loadAndStore(key, load, o);
      }
      if (token) {
        try {
          if (!background) {
            const e = await fromShared(key, true);
            if (e) return e.v as T;
          }
          return await loadAndStore(key, load, o);
        } finally {
          await shared.unlock(key, token).catch((err) => onError(err, 'unlock'));
        }
      }
      if (background) return SKIPPED;
      if (Date.now() >= deadline) break;
      await sleep(pause);
      pause = Math.min(pause * 2, 100);
      const e = await fromShared(key, true);
      if (e) return e.v as T;
    }
    // The lock never came free (a holder slower than the lock): load here rather than wait on.
    return loadAndStore(key, load, o);
  }

  function singleFlight<T>(key: string, run: () => Promise<T>): Promise<T> {
    const existing = inflight.get(key);
    if (existing) return existing as Promise<T>;
    const p: Promise<T> = run().finally(() => {
      if (inflight.get(key) === p) inflight.delete(key);
    });
    inflight.set(key, p);
    return p;
  }

  function refreshInBackground<T>(key: string, load: () => Promise<T>, o?: CacheLoadOptions) {
    if (inflight.has(key) || refreshing.has(key)) return;
    const p: Promise<unknown> = loadOnce(key, load, o, true)
      .catch((err) => {
        onError(err, 'refresh');
        return SKIPPED;
      })
      .finally(() => {
        if (refreshing.get(key) === p) refreshing.delete(key);
      });
    refreshing.set(key, p);
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
      // A refresh already under way here answers this caller too, if it loads (it may find
      // another instance refreshing and end without a value; then this caller loads).
      const refresh = refreshing.get(key);
      if (refresh && !inflight.has(key)) {
        const v = await refresh;
        if (v !== SKIPPED) return v as T;
      }
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
      await broadcast(keys);
    },

    stats: () => ({ ...stats }),

    async close() {
      closed = true;
      clearTimeout(retry);
      l1.clear();
      inflight.clear();
      refreshing.clear();
      await shared?.close();
    },
  };
}

/** Sent on the invalidation channel (or to a listener) to mean "drop everything". */
export const ALL_KEYS = '*';

/** A lock token unique to this holder. */
export const lockToken = () => randomUUID();
