import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { createTestStack, type TestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createMember, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';
import { redisModeEnv } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';
import { cacheSubscribers, ready } from '../platform/cache.support.js';

/**
 * The Content API as a CDN sees it: strong ETags, 304s, Cache-Control and Surrogate-Key, and
 * bodies cached under the tenant's content version, so every change readers can see is there
 * on the very next read (in process, in Redis mode, and across two instances sharing Redis).
 */

const PUBLIC_ENV = { PUBLIC_CACHE_SECONDS: '120', PUBLIC_STALE_SECONDS: '600' };

// biome-ignore lint/suspicious/noExplicitAny: staff DTOs are read field by field
type Dto = Record<string, any>;

type Staff = (
  method: 'POST' | 'PATCH' | 'PUT',
  url: string,
  tenant: TestTenant,
  user: TestUser,
  payload?: object,
) => Promise<Dto>;

/** The staff API of `app`, failing loudly on anything but success. */
const staffOf =
  (app: FastifyInstance): Staff =>
  async (method, url, tenant, user, payload) => {
    const res = await app.inject({ method, url: `/api/v1${url}`, headers: tenant.as(user), payload: payload ?? {} });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json().data;
  };

/** A published post through the staff API. */
async function publishedPost(
  staff: Staff,
  t: TestTenant,
  fields: { title: string; slug: string; tags?: string[]; authors?: string[] },
) {
  const p = await staff('POST', '/posts', t, t.owner, { body: `Body of ${fields.title}`, ...fields });
  return staff('POST', `/posts/${p.id}/publish`, t, t.owner);
}

const surrogateKeys = (res: LightMyRequestResponse) => String(res.headers['surrogate-key'] ?? '').split(' ');

/** A Content API reader of one tenant on one app instance. */
function reader(app: FastifyInstance, t: TestTenant, key: () => string) {
  return (path: string, headers: Record<string, string> = {}) =>
    app.inject({
      url: `/s/${t.slug}/ghost/api/content${path}${path.includes('?') ? '&' : '?'}key=${key()}`,
      headers,
    });
}

const slugsOf = (res: LightMyRequestResponse, resource = 'posts') => {
  expect(res.statusCode, res.body).toBe(200);
  return (res.json()[resource] as Array<{ slug: string }>).map((p) => p.slug);
};

/**
 * The change-visibility checks, run against each mode: `write` is the instance changes go
 * through, `read` the one readers hit (the same one, or another sharing Redis).
 */
function visibilitySuite(
  label: string,
  setup: () => { write: FastifyInstance; read: FastifyInstance; readContainer: () => Container },
) {
  describe(label, () => {
    let staff: Staff;
    let t: TestTenant;
    let bob: TestUser;
    let key = '';
    let first: Dto;
    let tagId = '';
    let get: ReturnType<typeof reader>;

    beforeAll(async () => {
      const { write, read } = setup();
      staff = staffOf(write);
      t = await createTenant(write);
      bob = await createMember(write, t, 'editor');
      first = await publishedPost(staff, t, {
        title: 'First',
        slug: 'first',
        tags: ['News'],
        authors: [t.owner.id, bob.id],
      });
      tagId = first.tags[0].id;
      key = (await staff('POST', '/content-keys', t, t.owner, { name: 'Site' })).key;
      get = reader(read, t, () => key);
    });

    /** Reads `path` twice, so it is surely cached, and checks the second read loaded nothing. */
    async function warm(path: string) {
      const res = await get(path);
      expect(res.statusCode, res.body).toBe(200);
      const before = setup().readContainer().cache.stats();
      const again = await get(path);
      expect(again.headers.etag).toBe(res.headers.etag);
      expect(setup().readContainer().cache.stats().loads).toBe(before.loads);
      return res;
    }

    it('a publish is visible on the very next read, under a new ETag', async () => {
      const before = await warm('/posts/');
      expect(slugsOf(before)).toEqual(['first']);
      await publishedPost(staff, t, { title: 'Second', slug: 'second', tags: ['News'] });
      const after = await get('/posts/');
      expect(slugsOf(after)).toEqual(['second', 'first']);
      expect(after.headers.etag).not.toBe(before.headers.etag);
      // The old ETag no longer matches: a full answer, not a 304.
      const revalidated = await get('/posts/', { 'if-none-match': String(before.headers.etag) });
      expect(revalidated.statusCode).toBe(200);
      expect(slugsOf(revalidated)).toEqual(['second', 'first']);
      expect(slugsOf(await get('/posts/?filter=tag:news'))).toEqual(['second', 'first']);
    });

    it('an unpublish is visible on the very next read (list and read by slug)', async () => {
      const third = await publishedPost(staff, t, { title: 'Third', slug: 'third' });
      const before = await warm('/posts/');
      expect(slugsOf(before)).toContain('third');
      await warm('/posts/slug/third/');
      await staff('POST', `/posts/${third.id}/unpublish`, t, t.owner);
      const after = await get('/posts/');
      expect(slugsOf(after)).not.toContain('third');
      expect(after.headers.etag).not.toBe(before.headers.etag);
      const gone = await get('/posts/slug/third/');
      expect(gone.statusCode).toBe(404);
      expect(gone.json().errors[0].type).toBe('NotFoundError');
    });

    it('an edit of a published post is visible on the very next read', async () => {
      const before = await warm('/posts/slug/first/');
      expect(before.json().posts[0].title).toBe('First');
      first = await staff('PATCH', `/posts/${first.id}`, t, t.owner, {
        version: first.version,
        title: 'First, edited',
      });
      const after = await get('/posts/slug/first/');
      expect(after.json().posts[0].title).toBe('First, edited');
      expect(after.headers.etag).not.toBe(before.headers.etag);
    });

    it('a tag rename is visible on the very next read (tags and the posts that carry it)', async () => {
      const posts = await warm('/posts/slug/first/?include=tags');
      expect(posts.json().posts[0].primary_tag.name).toBe('News');
      const tags = await warm('/tags/');
      expect(slugsOf(tags, 'tags')).toEqual(['news']);
      await staff('PATCH', `/tags/${tagId}`, t, t.owner, { name: 'Headlines', slug: 'headlines' });
      const postsAfter = await get('/posts/slug/first/?include=tags');
      expect(postsAfter.json().posts[0].primary_tag).toMatchObject({ id: tagId, name: 'Headlines', slug: 'headlines' });
      expect(slugsOf(await get('/tags/'), 'tags')).toEqual(['headlines']);
      expect((await get('/tags/slug/news/')).statusCode).toBe(404);
      expect(slugsOf(await get('/posts/?filter=tag:headlines'))).toContain('first');
    });

    it('an author profile change is visible on the very next read (authors and posts)', async () => {
      const authors = await warm(`/authors/${bob.id}/`);
      expect(authors.json().authors[0].bio).toBeNull();
      await warm('/posts/slug/first/?include=authors');
      await staff('PATCH', `/authors/${bob.id}`, t, bob, { bio: 'Bob writes', slug: 'bob-the-writer' });
      expect((await get(`/authors/${bob.id}/`)).json().authors[0]).toMatchObject({
        bio: 'Bob writes',
        slug: 'bob-the-writer',
      });
      const post = (await get('/posts/slug/first/?include=authors')).json().posts[0];
      expect(post.authors[1]).toMatchObject({ id: bob.id, bio: 'Bob writes', slug: 'bob-the-writer' });
    });

    it('a settings title is visible on the very next read', async () => {
      const before = await warm('/settings/');
      expect(before.json().settings.title).toBe(t.name);
      await staff('PUT', `/tenants/${t.id}/settings`, t, t.owner, { title: `Renamed ${label}` });
      const after = await get('/settings/');
      expect(after.json().settings.title).toBe(`Renamed ${label}`);
      expect(after.headers.etag).not.toBe(before.headers.etag);
    });
  });
}

describe.each(databaseKinds)('Content API HTTP caching on $name', (kind) => {
  let tdb: TestDatabase;
  let stack: TestStack;
  let app: FastifyInstance;
  let staff: Staff;
  let t: TestTenant;
  let other: TestTenant;
  let bob: TestUser;
  let key = '';
  let otherKey = '';
  const posts: Record<string, Dto> = {};
  let get: ReturnType<typeof reader>;

  beforeAll(async () => {
    tdb = await kind.create();
    stack = await createTestStack(tdb.db, PUBLIC_ENV);
    app = stack.app;
    staff = staffOf(app);
    t = await createTenant(app);
    other = await createTenant(app);
    bob = await createMember(app, t, 'editor');
    posts.one = await publishedPost(staff, t, { title: 'One', slug: 'one', tags: ['News', 'Tech'], authors: [bob.id] });
    posts.two = await publishedPost(staff, t, {
      title: 'Two',
      slug: 'two',
      tags: ['Tech', '#internal'],
      authors: [t.owner.id, bob.id],
    });
    posts.theirs = await publishedPost(staff, other, { title: 'Theirs', slug: 'theirs', tags: ['News'] });
    key = (await staff('POST', '/content-keys', t, t.owner, { name: 'Site' })).key;
    otherKey = (await staff('POST', '/content-keys', other, other.owner, { name: 'Site' })).key;
    get = reader(app, t, () => key);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const loads = () => stack.container.cache.stats().loads;

  it('answers with a strong ETag, and 304 with an empty body when If-None-Match names it', async () => {
    const res = await get('/posts/?include=tags,authors');
    expect(res.statusCode, res.body).toBe(200);
    const etag = String(res.headers.etag);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{16,}"$/); // strong: no W/ prefix
    expect((await get('/posts/?include=tags,authors')).headers.etag).toBe(etag);

    const notModified = await get('/posts/?include=tags,authors', { 'if-none-match': etag });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
    expect(notModified.headers.etag).toBe(etag);
    expect(notModified.headers['cache-control']).toBe(res.headers['cache-control']);
    // If-None-Match compares weakly (RFC 9110), and takes a list.
    expect((await get('/posts/?include=tags,authors', { 'if-none-match': `W/${etag}` })).statusCode).toBe(304);
    expect((await get('/posts/?include=tags,authors', { 'if-none-match': `"nope", ${etag}` })).statusCode).toBe(304);
    const changed = await get('/posts/?include=tags,authors', { 'if-none-match': '"something-else"' });
    expect(changed.statusCode).toBe(200);
    expect(changed.body).toBe(res.body);

    // Another representation, another tag.
    expect((await get('/posts/?limit=1')).headers.etag).not.toBe(etag);
    // The ETag is of the bytes sent.
    expect((await get('/posts/slug/one/')).headers.etag).not.toBe((await get('/posts/slug/two/')).headers.etag);
  });

  it('sends Cache-Control for a CDN (public, s-maxage, stale-while-revalidate); errors are not cacheable', async () => {
    for (const path of ['/posts/', '/posts/slug/one/', '/tags/', '/authors/', '/settings/', '/pages/', '/tiers/']) {
      const res = await get(path);
      expect(res.statusCode, `${path}: ${res.body}`).toBe(200);
      const cc = String(res.headers['cache-control']);
      expect(cc, path).toMatch(/(^|,\s*)public(,|$)/);
      expect(cc, path).toMatch(/(^|,\s*)s-maxage=120(,|$)/);
      expect(cc, path).toMatch(/(^|,\s*)stale-while-revalidate=600(,|$)/);
    }
    for (const res of [
      await app.inject({ url: `/s/${t.slug}/ghost/api/content/posts/` }),
      await app.inject({ url: `/s/${t.slug}/ghost/api/content/posts/?key=${otherKey}` }),
      await get('/posts/slug/no-such-post/'),
      await get('/posts/?filter=nope:1'),
    ]) {
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(String(res.headers['cache-control'] ?? '')).not.toMatch(/public/);
      expect(res.headers.etag).toBeUndefined();
      expect(res.headers['surrogate-key']).toBeUndefined();
    }
  });

  it('Surrogate-Key names the tenant and exactly the posts, tags and authors in the body', async () => {
    const tenantKey = `t-${t.id}`;
    const list = await get('/posts/?include=tags,authors');
    const body = list.json().posts as Array<{
      id: string;
      tags: Array<{ id: string }>;
      authors: Array<{ id: string }>;
    }>;
    const expected = new Set([
      tenantKey,
      ...body.map((p) => `post-${p.id}`),
      ...body.flatMap((p) => p.tags.map((x) => `tag-${x.id}`)),
      ...body.flatMap((p) => p.authors.map((a) => `author-${a.id}`)),
    ]);
    expect(new Set(surrogateKeys(list))).toEqual(expected);
    expect(surrogateKeys(list)).toContain(`post-${posts.one!.id}`);
    expect(surrogateKeys(list)).toContain(`post-${posts.two!.id}`);
    expect(surrogateKeys(list)).toContain(`author-${bob.id}`);
    expect(surrogateKeys(list)).toContain(`author-${t.owner.id}`);
    expect(surrogateKeys(list)[0]).toBe(tenantKey);
    // No internal tag, no other tenant.
    const internal = posts.two!.tags.find((x: { slug: string }) => x.slug === 'hash-internal');
    expect(surrogateKeys(list)).not.toContain(`tag-${internal.id}`);
    expect(surrogateKeys(list)).not.toContain(`post-${posts.theirs!.id}`);

    // Only what the body holds: one post, no tags or authors unless included.
    const newest = await get('/posts/?limit=1');
    expect(surrogateKeys(newest)).toEqual([tenantKey, `post-${newest.json().posts[0].id}`]);
    const one = await get('/posts/slug/one/?include=tags');
    expect(new Set(surrogateKeys(one))).toEqual(
      new Set([tenantKey, `post-${posts.one!.id}`, ...posts.one!.tags.map((x: { id: string }) => `tag-${x.id}`)]),
    );
    const tags = await get('/tags/');
    expect(new Set(surrogateKeys(tags))).toEqual(
      new Set([tenantKey, ...tags.json().tags.map((x: { id: string }) => `tag-${x.id}`)]),
    );
    expect(tags.json().tags).toHaveLength(2);
    const authors = await get('/authors/');
    expect(new Set(surrogateKeys(authors))).toEqual(new Set([tenantKey, `author-${bob.id}`, `author-${t.owner.id}`]));
    expect(surrogateKeys(await get('/settings/'))).toEqual([tenantKey]);
    // A 304 carries them too (a CDN revalidating keeps its tags).
    const again = await get('/authors/', { 'if-none-match': String(authors.headers.etag) });
    expect(again.statusCode).toBe(304);
    expect(new Set(surrogateKeys(again))).toEqual(new Set(surrogateKeys(authors)));
  });

  it('an identical read is served from the cache: no load, the database is not asked', async () => {
    const path = '/posts/?include=tags,authors&limit=5&order=title%20asc';
    const first = await get(path);
    expect(first.statusCode).toBe(200);
    const before = stack.container.cache.stats();
    const second = await get(path);
    const after = stack.container.cache.stats();
    expect(second.body).toBe(first.body);
    expect(after.loads).toBe(before.loads);
    expect(after.misses).toBe(before.misses);
    expect(after.l1Hits).toBeGreaterThan(before.l1Hits);

    // The same query through another of the tenant's keys (or its parameters in another order)
    // shares the entry: the key is not part of it.
    const secondKey = (await staff('POST', '/content-keys', t, t.owner, { name: 'Second' })).key;
    const viaSecondKey = reader(app, t, () => secondKey);
    expect((await viaSecondKey('/tiers/')).statusCode).toBe(200); // the new key is looked up once
    const l0 = loads();
    const shared = await viaSecondKey('/posts/?order=title%20asc&limit=5&include=tags,authors');
    expect(shared.body).toBe(first.body);
    expect(shared.headers.etag).toBe(first.headers.etag);
    expect(loads()).toBe(l0);

    // A query not seen before does load (so the counter would notice a cache that never hits).
    const l1 = loads();
    expect((await get('/posts/?limit=4')).statusCode).toBe(200);
    expect(loads()).toBe(l1 + 1);
  });

  it('a change in another tenant leaves this tenant’s cached answers in use', async () => {
    const path = '/posts/?fields=slug';
    const first = await get(path);
    await publishedPost(staff, other, { title: 'Theirs too', slug: 'theirs-too' });
    const l0 = loads();
    const again = await get(path);
    expect(loads()).toBe(l0);
    expect(again.headers.etag).toBe(first.headers.etag);
    // While theirs changed at once.
    const theirs = await app.inject({ url: `/s/${other.slug}/ghost/api/content${path}&key=${otherKey}` });
    expect(slugsOf(theirs)).toEqual(['theirs-too', 'theirs']);
  });

  visibilitySuite('in-process cache', () => ({ write: app, read: app, readContainer: () => stack.container }));
});

const redisKind = databaseKinds[databaseKinds.length - 1]!;

describe(`Content API caching in Redis mode on ${redisKind.name}`, () => {
  let tdb: TestDatabase;
  const stacks: TestStack[] = [];
  let drop: () => Promise<void> = async () => {};
  let a: TestStack;
  let b: TestStack;

  beforeAll(async () => {
    const redis = await redisModeEnv('content-cache');
    drop = redis.drop;
    tdb = await redisKind.create();
    for (let i = 0; i < 2; i++) stacks.push(await createTestStack(tdb.db, { ...PUBLIC_ENV, ...redis.env }));
    [a, b] = stacks as [TestStack, TestStack];
    // Until the request-path connections are up the cache reads the database; wait for them and
    // for both instances' invalidation subscriptions.
    for (const s of stacks) await ready(s.container.redis!, 'the cache connection');
    const prefix = redis.env.REDIS_KEY_PREFIX!;
    await eventually(async () => (await cacheSubscribers(prefix)) === 2, 'both instances to subscribe', 10_000);
  });
  afterAll(async () => {
    for (const s of stacks) await s.app.close();
    await tdb?.drop();
    await drop();
  });

  it('both instances run with the Redis tier', () => {
    expect(a.container.redis).toBeDefined();
    expect(b.container.redis).toBeDefined();
  });

  visibilitySuite('one instance', () => ({ write: a.app, read: a.app, readContainer: () => a.container }));
  visibilitySuite('changes through instance A, reads through instance B', () => ({
    write: a.app,
    read: b.app,
    readContainer: () => b.container,
  }));

  it('a body cached by one instance is served by the other from Redis, with the same ETag', async () => {
    const staff = staffOf(a.app);
    const t = await createTenant(a.app);
    await publishedPost(staff, t, { title: 'Shared', slug: 'shared' });
    const key = (await staff('POST', '/content-keys', t, t.owner, { name: 'Site' })).key;
    const onA = await reader(a.app, t, () => key)('/posts/');
    expect(slugsOf(onA)).toEqual(['shared']);
    const b0 = b.container.cache.stats();
    const onB = await reader(b.app, t, () => key)('/posts/');
    expect(onB.body).toBe(onA.body);
    expect(onB.headers.etag).toBe(onA.headers.etag);
    const b1 = b.container.cache.stats();
    // Key, tenant, version and body all came from Redis: B loaded nothing.
    expect(b1.loads).toBe(b0.loads);
    expect(b1.l2Hits).toBeGreaterThan(b0.l2Hits);
  });
});
