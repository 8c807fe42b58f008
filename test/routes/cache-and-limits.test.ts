import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { createTestStack, type TestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createPost, createTenant, createUser, PASSWORD, type TestUser } from '../helpers/factories.js';
import { assertRedisReachable, dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { cacheSubscribers, eventually, rawRedis, ready } from '../platform/cache.support.js';

/**
 * Two instances of the real app on one database, as a deployment runs them: with REDIS_URL they
 * share the cache (and its invalidations) and the rate limit; without it each counts alone.
 */
describe.each(databaseKinds)('cache and rate limits across two instances on $name', (kind) => {
  let tdb: TestDatabase;
  const prefixes: string[] = [];
  const stacks: TestStack[] = [];

  beforeAll(async () => {
    // A missing Redis fails the suite; it never skips.
    await assertRedisReachable();
    tdb = await kind.create();
  });
  afterAll(async () => {
    for (const s of stacks) await s.app.close();
    await tdb?.drop();
    for (const p of prefixes) await dropPrefix(p);
  });

  /** Two instances on this database; with `redis`, sharing one Redis under a prefix of their own. */
  async function pair(env: Record<string, string>, redis: boolean): Promise<[TestStack, TestStack]> {
    const prefix = uniquePrefix('app');
    if (redis) prefixes.push(prefix);
    const withRedis: Record<string, string> = redis ? { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix } : {};
    const open = async () => {
      const s = await createTestStack(tdb.db, { ...env, ...withRedis });
      stacks.push(s);
      return s;
    };
    const made: [TestStack, TestStack] = [await open(), await open()];
    if (redis) {
      // The request-path connections fail fast: until they are up the cache goes to the database
      // and the limiter lets requests through uncounted. Wait for them, and for both subscriptions.
      for (const s of made) {
        await ready(s.container.redis!, 'the cache connection');
        await ready(s.container.rateLimitRedis!, 'the rate-limit connection');
      }
      await eventually(async () => (await cacheSubscribers(prefix)) === 2, 'both instances to subscribe');
    } else {
      expect(made.map((s) => s.container.redis)).toEqual([undefined, undefined]);
    }
    return made;
  }

  const stats = (c: Container) => c.cache.stats();

  describe('with REDIS_URL: one cache', () => {
    let a: TestStack;
    let b: TestStack;
    beforeAll(async () => {
      [a, b] = await pair({ BASE_HOST: 'blog.test', CACHE_TTL_SECONDS: '300', CACHE_L1_TTL_SECONDS: '30' }, true);
    });

    async function meOn(s: TestStack, user: TestUser) {
      const res = await s.app.inject({ url: '/api/v1/auth/me', headers: user.auth });
      expect(res.statusCode, res.body).toBe(200);
      return (res.json().data.memberships as Array<{ tenantId: string; role: string }>).map((m) => [
        m.tenantId,
        m.role,
      ]);
    }

    /** Reads /auth/me on B twice: the first read loads it, the second must come from B's L1 (with the caller's live sessions). */
    async function cachedOnB(user: TestUser) {
      const first = await meOn(b, user);
      const before = stats(b.container);
      expect(await meOn(b, user)).toEqual(first);
      const after = stats(b.container);
      expect(after.loads).toBe(before.loads);
      expect(after.l1Hits).toBe(before.l1Hits + 2);
      return first;
    }

    /**
     * /auth/me on B after a change made through A: B hears A's invalidation over Redis pub/sub
     * (here, in one process, on the next turns of the event loop; the deadline is far below the
     * 30 s L1 TTL and 300 s cache TTL, so expiry cannot be what refreshed it), then loads afresh.
     */
    async function afterChangeOnB(user: TestUser, received: number) {
      await eventually(
        () => stats(b.container).invalidationsReceived > received,
        'B to receive the invalidation A published',
        5_000,
      );
      const before = stats(b.container);
      const now = await meOn(b, user);
      expect(stats(b.container).loads).toBe(before.loads + 1);
      return now;
    }

    it('GET /auth/me on B reflects membership changes made through A as soon as A’s invalidation arrives', async () => {
      const owner = await createUser(a.app);
      const member = await createUser(b.app);

      // Creating a tenant on A: B had the owner's /auth/me cached with no memberships.
      expect(await cachedOnB(owner)).toEqual([]);
      let received = stats(b.container).invalidationsReceived;
      const created = await a.app.inject({
        method: 'POST',
        url: '/api/v1/tenants',
        headers: owner.auth,
        payload: { name: 'Shared', slug: `shared-${kind.name}` },
      });
      expect(created.statusCode, created.body).toBe(201);
      const tenantId = created.json().data.id as string;
      expect(await afterChangeOnB(owner, received)).toEqual([[tenantId, 'owner']]);

      // Inviting B's user through A.
      expect(await cachedOnB(member)).toEqual([]);
      received = stats(b.container).invalidationsReceived;
      const invited = await a.app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${tenantId}/members`,
        headers: owner.auth,
        payload: { email: member.email, role: 'viewer' },
      });
      expect(invited.statusCode, invited.body).toBe(201);
      expect(await afterChangeOnB(member, received)).toEqual([[tenantId, 'viewer']]);

      // Changing the role through A.
      expect(await cachedOnB(member)).toEqual([[tenantId, 'viewer']]);
      received = stats(b.container).invalidationsReceived;
      const changed = await a.app.inject({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenantId}/members/${member.id}`,
        headers: owner.auth,
        payload: { role: 'editor' },
      });
      expect(changed.statusCode, changed.body).toBe(204);
      expect(await afterChangeOnB(member, received)).toEqual([[tenantId, 'editor']]);

      // Removing the member through A.
      expect(await cachedOnB(member)).toEqual([[tenantId, 'editor']]);
      received = stats(b.container).invalidationsReceived;
      const removed = await a.app.inject({
        method: 'DELETE',
        url: `/api/v1/tenants/${tenantId}/members/${member.id}`,
        headers: owner.auth,
      });
      expect(removed.statusCode, removed.body).toBe(204);
      expect(await afterChangeOnB(member, received)).toEqual([]);
      // A, which made the changes, agrees.
      expect(await meOn(a, member)).toEqual([]);
      expect(await meOn(a, owner)).toEqual([[tenantId, 'owner']]);
    });

    it('signing out everywhere through A ends the access tokens on B as soon as A’s invalidation arrives', async () => {
      const user = await createUser(a.app);
      // B has the user's live sessions cached: the token is served from L1 there.
      expect(await cachedOnB(user)).toEqual([]);
      const received = stats(b.container).invalidationsReceived;
      const out = await a.app.inject({ method: 'POST', url: '/api/v1/auth/logout-all', headers: user.auth });
      expect(out.statusCode, out.body).toBe(204);
      await eventually(
        () => stats(b.container).invalidationsReceived > received,
        'B to receive the invalidation A published',
        5_000,
      );
      expectError(await b.app.inject({ url: '/api/v1/auth/me', headers: user.auth }), 401, 'invalid_token');
      expectError(await a.app.inject({ url: '/api/v1/auth/me', headers: user.auth }), 401, 'invalid_token');
    });

    it('resolves a tenant from its subdomain of BASE_HOST, from the cache after the first request', async () => {
      const t = await createTenant(a.app);
      await createPost(a.app, t, t.owner, { title: 'On the subdomain' });
      const list = (s: TestStack, host: string) =>
        s.app.inject({ url: '/api/v1/posts', headers: { ...t.owner.auth, host } });
      const titles = (res: LightMyRequestResponse) => res.json().data.map((p: { title: string }) => p.title);
      const host = `${t.slug}.blog.test`;

      // First request on A: one load (the slug lookup), which lands in Redis for every instance.
      const a0 = stats(a.container);
      const first = await list(a, host);
      expect(first.statusCode, first.body).toBe(200);
      expect(titles(first)).toEqual(['On the subdomain']);
      expect(stats(a.container).loads).toBe(a0.loads + 1);
      const raw = rawRedis();
      try {
        const stored = await raw.get(`${b.config.redis!.keyPrefix}:cache:tenant-slug:${t.slug}`);
        expect(JSON.parse(stored ?? 'null')?.v).toBe(t.id);
      } finally {
        raw.disconnect();
      }

      // Repeated requests on A: served from A's L1, no load (five hits each: the caller's live
      // sessions (is the access token's session signed out?); the slug; the caller's memberships,
      // read by tenant resolution (does the request spend the tenant's rate budget?) and by the
      // authorization guard (the caller's role); and the tenant's security policy).
      const a1 = stats(a.container);
      for (let i = 0; i < 3; i++) expect(titles(await list(a, host))).toEqual(['On the subdomain']);
      expect(stats(a.container).loads).toBe(a1.loads);
      expect(stats(a.container).l1Hits).toBe(a1.l1Hits + 15);

      // On B: the first request finds it in Redis (no load), the next ones in B's L1.
      const b0 = stats(b.container);
      for (let i = 0; i < 3; i++) expect(titles(await list(b, host))).toEqual(['On the subdomain']);
      const b1 = stats(b.container);
      expect(b1.loads).toBe(b0.loads);
      // The first: sessions, slug, memberships and policy from Redis, the memberships' second read
      // from L1; the next two, five L1 hits each.
      expect(b1.l2Hits).toBe(b0.l2Hits + 4);
      expect(b1.l1Hits).toBe(b0.l1Hits + 11);

      // An unknown subdomain is a 404, in the error shape.
      expectError(await list(b, `no-such-tenant-${kind.name}.blog.test`), 404, 'not_found');
    });

    it('a subdomain asked for before its tenant existed resolves once the tenant is created (the cached miss is dropped)', async () => {
      const owner = await createUser(a.app);
      const slug = `late-${kind.name}-${Date.now().toString(36)}`;
      const host = `${slug}.blog.test`;
      const list = (s: TestStack) => s.app.inject({ url: '/api/v1/posts', headers: { ...owner.auth, host } });
      expectError(await list(a), 404, 'not_found');
      expectError(await list(b), 404, 'not_found');
      const created = await a.app.inject({
        method: 'POST',
        url: '/api/v1/tenants',
        headers: owner.auth,
        payload: { name: 'Late', slug },
      });
      expect(created.statusCode, created.body).toBe(201);
      expect((await list(a)).statusCode).toBe(200);
      // B heard the invalidation over pub/sub (it may land a moment after the create returns).
      await eventually(async () => (await list(b)).statusCode === 200, 'B resolves the new subdomain', 5_000);
    });
  });

  it('with REDIS_URL the rate limit is shared: requests alternating between instances get 429 after the limit in total', async () => {
    const [c, d] = await pair({ RATE_LIMIT_MAX: '5', AUTH_RATE_LIMIT_MAX: '3' }, true);
    // One sign-up and one sign-in on C (each credential route counts on its own).
    const u = await createUser(c.app);
    const on = (i: number) => (i % 2 === 0 ? c : d);
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await on(i).app.inject({ url: '/api/v1/tenants', headers: u.auth });
      expect(res.statusCode, `request ${i + 1}: ${res.body}`).toBe(200);
      remaining.push(String(res.headers['ratelimit-remaining']));
    }
    // One count across both instances.
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    for (const s of [d, c]) {
      const res = await s.app.inject({ url: '/api/v1/tenants', headers: u.auth });
      const err = expectError(res, 429, 'rate_limited');
      expect(err.message).toMatch(/^Too many requests; retry in \d+ s$/);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(res.headers['ratelimit-limit']).toBe('5');
    }

    // The stricter credential limit is shared too, and counted apart from the rest of the API.
    const login = (s: TestStack) =>
      s.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: u.email, password: PASSWORD } });
    expect((await login(d)).statusCode).toBe(200); // 2nd sign-in (createUser made the 1st on C)
    expect((await login(c)).statusCode).toBe(200); // 3rd
    const limited = await login(d);
    expectError(limited, 429, 'rate_limited');
    expect(limited.headers['ratelimit-limit']).toBe('3');
  });

  it('without REDIS_URL (in-process mode, for a single instance) each instance counts requests alone', async () => {
    const [e, f] = await pair({ RATE_LIMIT_MAX: '5', AUTH_RATE_LIMIT_MAX: '3' }, false);
    const u = await createUser(e.app);
    // Five on each, alternating: ten requests pass where a shared limit would stop at five.
    for (let i = 0; i < 10; i++) {
      const res = await (i % 2 === 0 ? e : f).app.inject({ url: '/api/v1/tenants', headers: u.auth });
      expect(res.statusCode, `request ${i + 1}: ${res.body}`).toBe(200);
      expect(res.headers['ratelimit-remaining']).toBe(String(4 - Math.floor(i / 2)));
    }
    for (const s of [e, f]) {
      expectError(await s.app.inject({ url: '/api/v1/tenants', headers: u.auth }), 429, 'rate_limited');
    }
  });

  it('without REDIS_URL each instance caches alone: a change through one is not seen by the other’s cache', async () => {
    const [e, f] = await pair({}, false);
    // Nothing tells F that E changed a membership, so F keeps serving its cached /auth/me until
    // the entry expires: this mode is for one instance.
    const v = await createUser(f.app);
    const memberships = async (s: TestStack) =>
      (await s.app.inject({ url: '/api/v1/auth/me', headers: v.auth })).json().data.memberships;
    expect(await memberships(f)).toEqual([]);
    await createTenant(e.app, v);
    expect(await memberships(e)).toHaveLength(1);
    expect(await memberships(f)).toEqual([]);
    expect(stats(f.container).invalidationsReceived).toBe(0);
  });
});
