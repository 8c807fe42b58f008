import { Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections. Commands queue while Redis is away and are replayed when it is back
 * (ioredis's offline queue), so a restart delays requests instead of failing them; callers
 * that must not wait (health checks) put their own timeout around the call.
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: 'quire',
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...opts,
  });
  // Connection errors are reported through health checks and the callers' own failures;
  // an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

export type { Redis };
