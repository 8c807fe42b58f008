import { createServer, type Server, Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { type Cache, type CacheOptions, createCache } from '../../src/platform/cache/index.js';
import { createRedisTier } from '../../src/platform/cache/redis.js';
import { createRedis } from '../../src/platform/redis/index.js';
import { TEST_REDIS_URL } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

/**
 * Support for the cache suites (test/platform/cache.*.test.ts, test/routes/cache-and-limits.test.ts):
 * caches on the real Redis built the way src/composition.ts builds them, polling, gates, and a
 * TCP proxy in front of Redis that a test can cut and restore (a real outage, not a fake client).
 */

/** The request-path connection options of src/composition.ts: commands fail at once while Redis is away. */
export const FAIL_FAST: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000 };

export { eventually, type Gate, gate, sleep } from '../helpers/wait.js';

/** A loader that counts its calls and returns `value(n)` for the n-th call (1-based). */
export function counted<T>(value: (n: number) => T | Promise<T>) {
  const loader = async () => {
    loader.calls++;
    return value(loader.calls);
  };
  loader.calls = 0;
  return loader;
}

/** Waits until a connection is usable (fail-fast connections reject commands before that). */
export const ready = (redis: Redis, what = 'redis connection') =>
  eventually(() => redis.status === 'ready', `${what} to be ready`);

/** How many connections are subscribed to the cache invalidation channel of `prefix`. */
export async function cacheSubscribers(prefix: string, url = TEST_REDIS_URL): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const [, n] = (await r.pubsub('NUMSUB', `${prefix}:cache:invalidate`)) as [string, number];
    return Number(n);
  } finally {
    r.disconnect();
  }
}

/** Raw access to the test Redis (the suites look at what the cache wrote). */
export const rawRedis = () => new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });

export interface TestCache {
  cache: Cache;
  /** The request-path connection behind the shared tier (undefined in memory mode). */
  redis?: Redis;
  /** What the cache reported through onError, as `where: message`. */
  errors: string[];
  close(): Promise<void>;
}

type CacheTuning = Partial<Omit<CacheOptions, 'shared' | 'onError'>>;

const defaults = { l1MaxEntries: 1_000, l1TtlSeconds: 60, defaultTtlSeconds: 60, defaultStaleSeconds: 0 };

function track(cache: Cache, errors: string[], redis?: Redis): TestCache {
  let closed = false;
  return {
    cache,
    redis,
    errors,
    async close() {
      if (closed) return;
      closed = true;
      await cache.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

const recorder = (errors: string[]) => (err: unknown, where: string) =>
  errors.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);

/** createCache without a shared tier: one instance's L1 alone. */
export function memoryCache(tuning: CacheTuning = {}): TestCache {
  const errors: string[] = [];
  return track(createCache({ ...defaults, ...tuning, onError: recorder(errors) }), errors);
}

/**
 * createCache with the Redis tier, as src/composition.ts builds it (fail-fast connection, its
 * own subscriber connection). `wait`: resolve once the connection is ready (default true).
 */
export async function redisCache(
  prefix: string,
  tuning: CacheTuning = {},
  opts: { url?: string; wait?: boolean } = {},
): Promise<TestCache> {
  const url = opts.url ?? TEST_REDIS_URL;
  const errors: string[] = [];
  const redis = createRedis(url, FAIL_FAST);
  const cache = createCache({
    ...defaults,
    ...tuning,
    shared: createRedisTier(redis, { url, prefix }),
    onError: recorder(errors),
  });
  const t = track(cache, errors, redis);
  if (opts.wait ?? true) {
    try {
      await ready(redis);
    } catch (err) {
      await t.close();
      throw err;
    }
  }
  return t;
}

/** A port nothing listens on (bound for a moment, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface RedisProxy {
  /** redis://127.0.0.1:<proxy port> */
  url: string;
  /** Drops every connection and refuses new ones: Redis is unreachable through the proxy. */
  cut(): Promise<void>;
  /** Accepts connections again (same port). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy in front of the test Redis, so a test can take Redis away from one client and give it back. */
export async function redisProxy(target = TEST_REDIS_URL): Promise<RedisProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    const s = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(Number(targetPort || 6379), hostname);
      for (const sock of [client, upstream]) {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as { port: number }).port;
    server = s;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  await listen();
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: stop,
    restore: listen,
    close: stop,
  };
}
