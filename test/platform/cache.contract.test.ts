import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertRedisReachable, dropPrefix, uniquePrefix } from '../helpers/redis.js';
import { counted, eventually, gate, memoryCache, redisCache, sleep, type TestCache } from './cache.support.js';

/**
 * The Cache port's contract, run against both configurations src/composition.ts builds:
 * "memory" (L1 alone, no REDIS_URL) and "redis" (L1 in front of the Redis tier, on the real
 * Redis under a key prefix of this suite's own). Each case uses keys of its own.
 * Cross-instance behaviour (locks, pub/sub invalidation, outages) is in cache.redis.test.ts.
 */
interface Configuration {
  name: 'memory' | 'redis';
  setup(): Promise<void>;
  make(tuning?: Parameters<typeof memoryCache>[0]): Promise<TestCache>;
  teardown(): Promise<void>;
}

const memory: Configuration = {
  name: 'memory',
  setup: async () => {},
  make: async (tuning) => memoryCache(tuning),
  teardown: async () => {},
};

function redis(): Configuration {
  const prefix = uniquePrefix('cache');
  return {
    name: 'redis',
    // A missing Redis fails the suite; it never skips.
    setup: () => assertRedisReachable(),
    make: (tuning) => redisCache(prefix, tuning),
    teardown: () => dropPrefix(prefix),
  };
}

let n = 0;
const key = (label: string) => `${label}:${++n}`;

describe.each([memory, redis()])('cache contract: $name', (config) => {
  const open: TestCache[] = [];
  const make = async (tuning?: Parameters<typeof memoryCache>[0]) => {
    const c = await config.make(tuning);
    open.push(c);
    return c;
  };

  beforeAll(() => config.setup());
  afterEach(async () => {
    const caches = open.splice(0);
    await Promise.all(caches.map((c) => c.close()));
    // The shared tier worked throughout: nothing fell back to the source because of an error.
    for (const c of caches) expect(c.errors).toEqual([]);
  });
  afterAll(() => config.teardown());

  it('loads once, then serves the value from the cache', async () => {
    const { cache } = await make();
    const k = key('once');
    const load = counted((i) => ({ id: 'x', call: i }));
    expect(await cache.getOrLoad(k, load)).toEqual({ id: 'x', call: 1 });
    expect(await cache.getOrLoad(k, load)).toEqual({ id: 'x', call: 1 });
    expect(await cache.getOrLoad(k, load)).toEqual({ id: 'x', call: 1 });
    expect(load.calls).toBe(1);
    expect(cache.stats()).toMatchObject({ misses: 1, loads: 1, l1Hits: 2 });
    // Other keys are other values.
    expect(await cache.getOrLoad(key('other'), async () => 'other')).toBe('other');
  });

  it('caches a null result too (a known absence is not looked up again)', async () => {
    const { cache } = await make();
    const k = key('null');
    const load = counted(() => null);
    expect(await cache.getOrLoad(k, load)).toBeNull();
    expect(await cache.getOrLoad(k, load)).toBeNull();
    expect(load.calls).toBe(1);
  });

  it('reloads once the TTL has passed', async () => {
    const { cache } = await make();
    const k = key('ttl');
    const load = counted((i) => `v${i}`);
    expect(await cache.getOrLoad(k, load, { ttlSeconds: 0.5, staleSeconds: 0 })).toBe('v1');
    expect(await cache.getOrLoad(k, load, { ttlSeconds: 0.5, staleSeconds: 0 })).toBe('v1');
    expect(load.calls).toBe(1);
    await sleep(700);
    expect(await cache.getOrLoad(k, load, { ttlSeconds: 0.5, staleSeconds: 0 })).toBe('v2');
    expect(load.calls).toBe(2);
  });

  it('does not cache a loader error: it reaches every waiting caller, and the next call loads again', async () => {
    const { cache } = await make();
    const k = key('error');
    const boom = new Error('source unavailable');
    const hold = gate();
    const failing = counted(async () => {
      await hold.promise;
      throw boom;
    });
    const callers = Array.from({ length: 5 }, () => cache.getOrLoad(k, failing));
    await eventually(() => failing.calls === 1, 'the loader to start');
    hold.open();
    for (const r of await Promise.allSettled(callers)) expect(r).toEqual({ status: 'rejected', reason: boom });
    expect(failing.calls).toBe(1);
    const ok = counted(() => 'recovered');
    expect(await cache.getOrLoad(k, ok)).toBe('recovered');
    expect(ok.calls).toBe(1);
    expect(await cache.getOrLoad(k, ok)).toBe('recovered');
    expect(ok.calls).toBe(1);
  });

  it('calls the loader once for concurrent reads of one key (single flight)', async () => {
    const { cache } = await make();
    const k = key('flight');
    const hold = gate();
    const load = counted(async (i) => {
      await hold.promise;
      return { call: i };
    });
    const callers = Array.from({ length: 20 }, () => cache.getOrLoad(k, load));
    await eventually(() => load.calls === 1, 'the loader to start');
    hold.open();
    const values = await Promise.all(callers);
    expect(values).toEqual(Array.from({ length: 20 }, () => ({ call: 1 })));
    expect(load.calls).toBe(1);
    expect(cache.stats().loads).toBe(1);
  });

  it('invalidate drops the value: the next read loads again', async () => {
    const { cache } = await make();
    const k = key('inv');
    const load = counted((i) => `v${i}`);
    expect(await cache.getOrLoad(k, load)).toBe('v1');
    await cache.invalidate(k);
    expect(await cache.get(k)).toBeUndefined();
    expect(await cache.getOrLoad(k, load)).toBe('v2');
    expect(await cache.getOrLoad(k, load)).toBe('v2');
    expect(load.calls).toBe(2);
    // Invalidating nothing, or an unknown key, is harmless.
    await cache.invalidate();
    await cache.invalidate(key('never-set'));
    expect(await cache.getOrLoad(k, load)).toBe('v2');
  });

  it('a load that began before an invalidation is neither served to later readers nor stored', async () => {
    const { cache } = await make();
    const k = key('inv-flight');
    const hold = gate();
    const before = counted(async () => {
      await hold.promise;
      return 'before the change';
    });
    const early = cache.getOrLoad(k, before);
    await eventually(() => before.calls === 1, 'the first load to start');
    // The data changes; its writer invalidates while the first load is still running.
    await cache.invalidate(k);
    const after = counted(() => 'after the change');
    const late = cache.getOrLoad(k, after);
    hold.open();
    // A reader that came after the invalidation does not get the load that began before it...
    expect(await late).toBe('after the change');
    // ...while whoever asked before gets what they asked for.
    expect(await early).toBe('before the change');
    // ...but it is not kept: later reads still see the post-invalidation value, from the cache.
    const later = counted(() => 'loaded again');
    expect(await cache.getOrLoad(k, later)).toBe('after the change');
    expect(later.calls).toBe(0);
    expect(after.calls).toBe(1);
  });

  it('set stores a value that get and getOrLoad return; get of an unknown key is undefined', async () => {
    const { cache } = await make();
    const k = key('set');
    expect(await cache.get(k)).toBeUndefined();
    await cache.set(k, { n: 1, tags: ['a'] });
    expect(await cache.get(k)).toEqual({ n: 1, tags: ['a'] });
    const load = counted(() => 'loaded');
    expect(await cache.getOrLoad(k, load)).toEqual({ n: 1, tags: ['a'] });
    expect(load.calls).toBe(0);
    // set replaces a cached value.
    await cache.set(k, 'replaced');
    expect(await cache.get(k)).toBe('replaced');
    expect(await cache.getOrLoad(k, load)).toBe('replaced');
    // ...and honours its TTL.
    const short = key('set-ttl');
    await cache.set(short, 'brief', { ttlSeconds: 0.3, staleSeconds: 0 });
    expect(await cache.get(short)).toBe('brief');
    await sleep(500);
    expect(await cache.get(short)).toBeUndefined();
  });

  it('stale-while-revalidate: past the TTL but within the stale window, serves the old value and refreshes it', async () => {
    const { cache } = await make();
    const k = key('swr');
    const opts = { ttlSeconds: 0.2, staleSeconds: 30 };
    expect(await cache.getOrLoad(k, async () => 'old', opts)).toBe('old');
    await sleep(300);
    const hold = gate();
    const refresh = counted(async () => {
      await hold.promise;
      return 'new';
    });
    // The refresh is held back, so this answer cannot have waited for it.
    expect(await cache.getOrLoad(k, refresh, opts)).toBe('old');
    expect(cache.stats().staleServed).toBe(1);
    await eventually(() => refresh.calls === 1, 'the background refresh to start');
    // While it runs, readers keep getting the old value and start no second refresh.
    expect(await cache.getOrLoad(k, refresh, opts)).toBe('old');
    hold.open();
    await eventually(async () => (await cache.getOrLoad(k, refresh, opts)) === 'new', 'the refreshed value');
    expect(refresh.calls).toBe(1);
    expect(cache.stats().misses).toBe(1);
  });

  it('refreshes a hot key early, before it expires (XFetch), when the load is slow', async () => {
    const { cache } = await make();
    const k = key('xfetch');
    const opts = { ttlSeconds: 1, staleSeconds: 0 };
    const load = counted(async (i) => {
      await sleep(300);
      return `v${i}`;
    });
    expect(await cache.getOrLoad(k, load, opts)).toBe('v1');
    const loadedAt = Date.now();
    // Expiry is about a second after the load ended; the load took 300 ms. Read through the last
    // 200 ms before expiry: each read refreshes early with probability e^(-remaining/300ms).
    await sleep(Math.max(0, loadedAt + 800 - Date.now()));
    const values: string[] = [];
    while (Date.now() < loadedAt + 950 && cache.stats().earlyRefreshes === 0) {
      values.push(await cache.getOrLoad(k, load, opts));
      await sleep(10);
    }
    expect(cache.stats().earlyRefreshes).toBeGreaterThan(0);
    // The early refresh is a real reload, one however many reads asked for it, and it lands.
    await eventually(() => load.calls >= 2, 'the early refresh to call the loader');
    expect(load.calls).toBe(2);
    await eventually(async () => (await cache.getOrLoad(k, load, opts)) !== 'v1', 'the refreshed value');
    expect(values.every((v) => v === 'v1')).toBe(true);
  });
});
