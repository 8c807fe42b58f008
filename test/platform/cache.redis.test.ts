import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache, type SharedTier } from '../../src/platform/cache/index.js';
import { createRedisTier } from '../../src/platform/cache/redis.js';
import { createRedis } from '../../src/platform/redis/index.js';
import { assertRedisReachable, dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import {
  cacheSubscribers,
  closedPort,
  counted,
  eventually,
  FAIL_FAST,
  gate,
  rawRedis,
  ready,
  redisCache,
  redisProxy,
  sleep,
} from './cache.support.js';

/**
 * The cache across instances: several createCache instances, each with its own Redis
 * connections (as separate processes have), sharing one key prefix on the real Redis.
 * Every case gets a prefix of its own (so subscriber counts and keys are its alone).
 */
describe('cache across instances (redis)', () => {
  const prefixes: string[] = [];
  const open: Array<{ close(): Promise<void> }> = [];
  let raw: Redis;

  beforeAll(async () => {
    await assertRedisReachable();
    raw = rawRedis();
  });
  afterEach(async () => {
    // Newest first: caches before the proxy they go through.
    for (const c of open.splice(0).reverse()) await c.close();
  });
  afterAll(async () => {
    raw?.disconnect();
    for (const p of prefixes) await dropPrefix(p);
  });

  const newPrefix = () => {
    const p = uniquePrefix('xcache');
    prefixes.push(p);
    return p;
  };

  /** Two caches on one prefix, connected and subscribed (so neither misses an invalidation at start). */
  async function twoInstances(tuning: Parameters<typeof redisCache>[1] = {}) {
    const prefix = newPrefix();
    const a = await redisCache(prefix, tuning);
    open.push(a);
    const b = await redisCache(prefix, tuning);
    open.push(b);
    await eventually(async () => (await cacheSubscribers(prefix)) === 2, 'both subscribers');
    return { prefix, a, b };
  }

  const lockHeld = (prefix: string, k: string) => raw.exists(`${prefix}:cache-lock:${k}`).then((n) => n === 1);

  it('shares values: what one instance loaded, another serves from Redis without loading', async () => {
    const { prefix, a, b } = await twoInstances();
    const loadA = counted(() => ({ from: 'a' }));
    const loadB = counted(() => ({ from: 'b' }));
    expect(await a.cache.getOrLoad('shared', loadA)).toEqual({ from: 'a' });
    expect(await raw.exists(`${prefix}:cache:shared`)).toBe(1);
    expect(await b.cache.getOrLoad('shared', loadB)).toEqual({ from: 'a' });
    expect(await b.cache.getOrLoad('shared', loadB)).toEqual({ from: 'a' });
    expect([loadA.calls, loadB.calls]).toEqual([1, 0]);
    expect(b.cache.stats()).toMatchObject({ l2Hits: 1, l1Hits: 1, loads: 0 });
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('calls one loader in total for 20 concurrent reads on each of two instances (cross-instance lock)', async () => {
    const { a, b } = await twoInstances();
    for (let round = 0; round < 5; round++) {
      const k = `cold-${round}`;
      let calls = 0;
      const load = async () => {
        calls++;
        await sleep(50);
        return { round };
      };
      const reads = Array.from({ length: 20 }, () => [a.cache.getOrLoad(k, load), b.cache.getOrLoad(k, load)]).flat();
      const values = await Promise.all(reads);
      expect(values).toEqual(Array.from({ length: 40 }, () => ({ round })));
      expect(calls).toBe(1);
    }
    expect(a.cache.stats().loads + b.cache.stats().loads).toBe(5);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('does not load again when another instance stored the value between its miss and its lock', async () => {
    const prefix = newPrefix();
    const a = await redisCache(prefix);
    open.push(a);
    // B's tier is the real Redis tier; only its reads are held back until the test lets them
    // through, to force the interleaving: B misses, then A loads, stores and unlocks, then B locks.
    const held = gate();
    let readsAnswered = 0;
    const redisB = createRedis(TEST_REDIS_URL, FAIL_FAST);
    const tierB = createRedisTier(redisB, { url: TEST_REDIS_URL, prefix });
    const slowReads: SharedTier = {
      ...tierB,
      async get(k) {
        const value = await tierB.get(k);
        readsAnswered++;
        await held.promise;
        return value;
      },
    };
    const errorsB: string[] = [];
    const b = createCache({
      shared: slowReads,
      l1MaxEntries: 100,
      l1TtlSeconds: 60,
      defaultTtlSeconds: 60,
      onError: (err, where) => errorsB.push(`${where}: ${String(err)}`),
    });
    open.push({
      close: async () => {
        await b.close();
        await redisB.quit();
      },
    });
    await ready(redisB);

    const loadB = counted(() => 'from b');
    const readB = b.getOrLoad('k', loadB);
    // Redis has answered B's read ("nothing there"); B does not see the answer yet.
    await eventually(() => readsAnswered === 1, "Redis to answer B's read");
    expect(await a.cache.getOrLoad('k', async () => 'from a')).toBe('from a');
    expect(await lockHeld(prefix, 'k')).toBe(false);
    held.open();
    expect(await readB).toBe('from a');
    expect(loadB.calls).toBe(0);
    expect([...a.errors, ...errorsB]).toEqual([]);
  });

  it('a waiting instance loads itself as soon as the lock holder’s load fails (no wait for the lock to expire)', async () => {
    // A lock TTL of ten minutes: waiting it out would outlast the test's deadline.
    const { prefix, a, b } = await twoInstances({ lockTtlMs: 600_000 });
    const hold = gate();
    const failing = counted(async () => {
      await hold.promise;
      throw new Error('database went away');
    });
    const readA = a.cache.getOrLoad('k', failing);
    await eventually(() => failing.calls === 1 && lockHeld(prefix, 'k'), 'A to hold the lock and load');
    const loadB = counted(() => 'from b');
    const readB = b.cache.getOrLoad('k', loadB);
    await eventually(() => b.cache.stats().misses === 1, 'B to wait for the lock');
    expect(loadB.calls).toBe(0);
    hold.open();
    await expect(readA).rejects.toThrow('database went away');
    expect(await readB).toBe('from b');
    expect(loadB.calls).toBe(1);
    // B's value is shared: A now serves it without loading.
    expect(await a.cache.getOrLoad('k', failing)).toBe('from b');
    expect(failing.calls).toBe(1);
  });

  it("instance A's invalidate removes the key from instance B's L1 (and not its own echo)", async () => {
    const { a, b } = await twoInstances();
    const loadB = counted((i) => `b${i}`);
    expect(await b.cache.getOrLoad('user', loadB)).toBe('b1');
    expect(await b.cache.getOrLoad('user', loadB)).toBe('b1');
    expect(b.cache.stats().l1Hits).toBe(1);
    expect(await a.cache.getOrLoad('user', async () => 'unused')).toBe('b1');

    await a.cache.invalidate('user');
    await eventually(() => b.cache.stats().invalidationsReceived === 1, 'B to receive the invalidation');
    expect(await b.cache.getOrLoad('user', loadB)).toBe('b2');
    expect(loadB.calls).toBe(2);

    // A does not receive its own message. Messages arrive in order, so once one published
    // later by B has reached A (A dropped the key it names), A's count shows whether its own came.
    const loadA = counted((i) => `a${i}`);
    expect(await a.cache.getOrLoad('other', loadA)).toBe('a1');
    await b.cache.invalidate('other');
    await eventually(async () => (await a.cache.getOrLoad('other', loadA)) !== 'a1', 'A to drop the key B invalidated');
    expect(a.cache.stats().invalidationsReceived).toBe(1);
    expect(b.cache.stats().invalidationsReceived).toBe(1);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('a read after an invalidation gets a fresh load, even while a stale refresh is under way elsewhere', async () => {
    const { prefix, a, b } = await twoInstances();
    const opts = { ttlSeconds: 0.2, staleSeconds: 60 };
    expect(await a.cache.getOrLoad('me', async () => 'v1', opts)).toBe('v1');
    await sleep(300);
    // B serves the stale value and refreshes it in the background; the refresh holds the lock.
    const hold = gate();
    const slowB = counted(async () => {
      await hold.promise;
      return 'read before the change';
    });
    expect(await b.cache.getOrLoad('me', slowB, opts)).toBe('v1');
    await eventually(() => slowB.calls === 1 && lockHeld(prefix, 'me'), 'B’s refresh to hold the lock');

    // On A: a stale read (its own refresh finds B's lock), then the data changes and A invalidates,
    // then a read that must reflect the change.
    const loadA = counted(() => 'read after the change');
    const stale = a.cache.getOrLoad('me', loadA, opts);
    const invalidated = a.cache.invalidate('me');
    const fresh = a.cache.getOrLoad('me', loadA, opts);
    expect(await stale).toBe('v1');
    await invalidated;
    await eventually(() => b.cache.stats().invalidationsReceived === 1, 'B to receive the invalidation');
    hold.open();
    expect(await fresh).toBe('read after the change');
    // B's refresh, begun before the change, was not stored: B now gets A's value from Redis.
    const loadB = counted(() => 'loaded by b');
    expect(await b.cache.getOrLoad('me', loadB, opts)).toBe('read after the change');
    expect(loadB.calls).toBe(0);
  });

  it('falls back to the source when Redis is unreachable, reporting through onError', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const c = await redisCache(newPrefix(), {}, { url, wait: false });
    open.push(c);
    const load = counted((i) => ({ fromSource: i }));
    expect(await c.cache.getOrLoad('k', load)).toEqual({ fromSource: 1 });
    expect(load.calls).toBe(1);
    expect(c.errors.length).toBeGreaterThan(0);
    expect(c.errors.some((e) => e.startsWith('get:'))).toBe(true);
    // Still a cache: L1 serves the value while Redis is away.
    expect(await c.cache.getOrLoad('k', load)).toEqual({ fromSource: 1 });
    expect(load.calls).toBe(1);
    // Writes and invalidations fail soft too.
    await c.cache.set('other', 1);
    expect(await c.cache.get('other')).toBe(1);
    await c.cache.invalidate('k');
    expect(c.errors.some((e) => e.startsWith('invalidate:'))).toBe(true);
    expect(await c.cache.getOrLoad('k', load)).toEqual({ fromSource: 2 });
    // And it closes without waiting for a Redis that is not coming.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<string>((r) => {
      timer = setTimeout(() => r('still waiting for Redis after 5 s'), 5_000);
    });
    const closing = c.close().then(() => 'closed');
    expect(await Promise.race([closing, deadline])).toBe('closed');
    clearTimeout(timer);
  });

  /** Two instances on one prefix; B reaches Redis through a proxy, so cutting it takes Redis from B alone. */
  async function pairBehindProxy() {
    const prefix = newPrefix();
    const proxy = await redisProxy();
    open.push(proxy);
    const a = await redisCache(prefix);
    open.push(a);
    const b = await redisCache(prefix, {}, { url: proxy.url });
    open.push(b);
    await eventually(async () => (await cacheSubscribers(prefix)) === 2, '2 subscribers');
    return { prefix, proxy, a, b };
  }

  it('an invalidation made while Redis was away reaches Redis and the other instances once it is back', async () => {
    const { prefix, proxy, a, b } = await pairBehindProxy();

    const loadA = counted((i) => `a${i}`);
    expect(await a.cache.getOrLoad('role', loadA)).toBe('a1');
    expect(await raw.exists(`${prefix}:cache:role`)).toBe(1);

    await proxy.cut();
    // The data changes; B's invalidation cannot reach Redis now. B itself drops the key at once.
    await b.cache.invalidate('role');
    expect(b.errors.some((e) => e.startsWith('invalidate:'))).toBe(true);
    expect(await raw.exists(`${prefix}:cache:role`)).toBe(1);
    expect(await a.cache.getOrLoad('role', loadA)).toBe('a1');

    await proxy.restore();
    // Without a retry the shared copy and A's L1 would keep the old value for their whole TTL.
    await eventually(() => a.cache.stats().invalidationsReceived >= 1, 'A to receive the delayed invalidation');
    expect(await raw.exists(`${prefix}:cache:role`)).toBe(0);
    expect(await a.cache.getOrLoad('role', loadA)).toBe('a2');
  });

  it('after its subscription drops and comes back, an instance forgets its L1 and hears invalidations again', async () => {
    const { prefix, proxy, a, b } = await pairBehindProxy();

    const loadB = counted((i) => `b${i}`);
    expect(await b.cache.getOrLoad('k', loadB)).toBe('b1');
    expect(await b.cache.getOrLoad('k2', loadB)).toBe('b2');

    await proxy.cut();
    await eventually(async () => (await cacheSubscribers(prefix)) === 1, 'B’s subscription to drop');
    // Missed by B: it is not connected.
    await a.cache.invalidate('k');
    // Meanwhile B still answers from L1 (bounded by its L1 TTL).
    expect(await b.cache.getOrLoad('k', loadB)).toBe('b1');

    await proxy.restore();
    await eventually(() => b.cache.stats().invalidationsReceived >= 1, 'B to drop its L1 on resubscribing');
    expect(await cacheSubscribers(prefix)).toBe(2);
    await ready(b.redis as Redis, 'B’s connection');
    // The missed invalidation no longer matters: B's L1 is empty and A deleted the shared copy.
    expect(await b.cache.getOrLoad('k', loadB)).toBe('b3');
    // And B hears invalidations again.
    const before = b.cache.stats().invalidationsReceived;
    await a.cache.invalidate('k2');
    await eventually(() => b.cache.stats().invalidationsReceived === before + 1, 'B to hear A again');
    expect(await b.cache.getOrLoad('k2', loadB)).toBe('b4');
  });
});
