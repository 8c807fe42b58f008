import type { Redis } from 'ioredis';
import { createRedis } from '../redis/index.js';
import { ALL_KEYS, lockToken, type SharedTier } from './index.js';

// Deletes the lock only if this holder still owns it (it may have expired and been taken).
const UNLOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** The cache's shared tier on Redis: values, SET NX PX locks and a pub/sub invalidation channel. */
export function createRedisTier(redis: Redis, opts: { url: string; prefix: string }): SharedTier {
  const key = (k: string) => `${opts.prefix}:cache:${k}`;
  const lockKey = (k: string) => `${opts.prefix}:cache-lock:${k}`;
  const channel = `${opts.prefix}:cache:invalidate`;
  // A subscribed connection can do nothing else, so it gets its own.
  let subscriber: Redis | undefined;
  return {
    get: (k) => redis.get(key(k)),
    async set(k, value, ttlMs) {
      await redis.set(key(k), value, 'PX', Math.max(1, Math.round(ttlMs)));
    },
    async del(keys) {
      await redis.del(...keys.map(key));
    },
    async lock(k, ttlMs) {
      const token = lockToken();
      const ok = await redis.set(lockKey(k), token, 'PX', ttlMs, 'NX');
      return ok === 'OK' ? token : null;
    },
    async unlock(k, token) {
      await redis.eval(UNLOCK, 1, lockKey(k), token);
    },
    async publishInvalidation(keys) {
      await redis.publish(channel, JSON.stringify(keys));
    },
    async onInvalidation(listener) {
      subscriber = createRedis(opts.url, { connectionName: 'quire-cache-sub' });
      subscriber.on('message', (_ch: string, message: string) => {
        try {
          const keys = JSON.parse(message);
          if (Array.isArray(keys)) listener(keys.filter((k): k is string => typeof k === 'string'));
        } catch {
          // Not ours; ignore.
        }
      });
      // Invalidations published while this connection was down are lost: forget everything local.
      let connectedOnce = false;
      subscriber.on('ready', () => {
        if (connectedOnce) listener([ALL_KEYS]);
        connectedOnce = true;
      });
      await subscriber.subscribe(channel);
    },
    async close() {
      await subscriber?.quit().catch(() => subscriber?.disconnect());
    },
  };
}
