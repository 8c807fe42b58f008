import type { Redis } from 'ioredis';
import { createRedis } from '../redis/index.js';
import { ALL_KEYS, lockToken, type SharedTier } from './index.js';

// Deletes the lock only if this holder still owns it (it may have expired and been taken).
const UNLOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** The keys of an invalidation message: `{ from, keys }` (or a bare array), null if not one. */
function parseInvalidation(message: string, self: string): string[] | null {
  let body: unknown;
  try {
    body = JSON.parse(message);
  } catch {
    return null;
  }
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const { from, keys } = body as { from?: unknown; keys?: unknown };
    // Our own: already dropped here when published.
    if (from === self) return null;
    body = keys;
  }
  return Array.isArray(body) ? body.filter((k): k is string => typeof k === 'string') : null;
}

/** The cache's shared tier on Redis: values, SET NX PX locks and a pub/sub invalidation channel. */
export function createRedisTier(redis: Redis, opts: { url: string; prefix: string }): SharedTier {
  const key = (k: string) => `${opts.prefix}:cache:${k}`;
  const lockKey = (k: string) => `${opts.prefix}:cache-lock:${k}`;
  const channel = `${opts.prefix}:cache:invalidate`;
  // Tags this tier's messages, so it does not drop (again) what its own cache just dropped.
  const self = lockToken();
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
      await redis.publish(channel, JSON.stringify({ from: self, keys }));
    },
    async onInvalidation(listener) {
      // Subscribing waits for Redis as long as it takes (a subscription given up after a few
      // retries would never come back), and is redone by hand on every reconnection (below).
      const sub = createRedis(opts.url, {
        connectionName: 'quire-cache-sub',
        maxRetriesPerRequest: null,
        autoResubscribe: false,
      });
      subscriber = sub;
      sub.on('message', (ch: string, message: string) => {
        if (ch !== channel) return;
        const keys = parseInvalidation(message, self);
        if (keys?.length) listener(keys);
      });
      // Invalidations published while the connection was down are lost: once subscribed again,
      // forget everything local. Only then: one published before the subscription would be lost too.
      let subscribedOnce = false;
      const subscribe = async () => {
        await sub.subscribe(channel);
        if (subscribedOnce) listener([ALL_KEYS]);
        subscribedOnce = true;
      };
      sub.on('ready', () => {
        // The first subscription is queued below; a failed one is retried at the next 'ready'.
        if (subscribedOnce) subscribe().catch(() => {});
      });
      await subscribe();
    },
    async close() {
      const sub = subscriber;
      if (!sub) return;
      // QUIT would wait in the offline queue for a Redis that may never come back.
      if (sub.status === 'ready') await sub.quit().catch(() => sub.disconnect());
      else sub.disconnect();
    },
  };
}
