import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * The Redis the suites use: TEST_REDIS_URL (CI sets it), else the local default. With CI=true
 * an unreachable Redis fails the run instead of skipping the Redis suites.
 */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

if (process.env.CI === 'true' && !process.env.TEST_REDIS_URL) {
  throw new Error('CI=true but TEST_REDIS_URL is unset: the Redis suites must run against a real Redis');
}

/** A key prefix of its own per suite, so suites sharing one Redis never see each other's keys. */
export const uniquePrefix = (label = 't') => `qt_${label}_${randomBytes(4).toString('hex')}`;

/** Deletes every key under `prefix`. */
export async function dropPrefix(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Fails loudly (never skips) when the Redis the suite needs is not there. */
export async function assertRedisReachable(url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis at ${url} is not reachable (${(err as Error).message}); start it or set TEST_REDIS_URL`);
  } finally {
    redis.disconnect();
  }
}

/** The env of an app in Redis mode on a key prefix of its own (checked reachable), and its clean-up. */
export async function redisModeEnv(label: string): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  await assertRedisReachable();
  const prefix = uniquePrefix(label);
  return { env: { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix }, drop: () => dropPrefix(prefix) };
}
