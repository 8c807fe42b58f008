import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createMember, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

/**
 * Ghost's Content API as Ghost clients see it: the real @tryghost/content-api client over a real
 * port, against two seeded tenants, plus plain fetch for what the client hides (status codes,
 * the error envelope, paths the client never builds).
 */

// The client ships no types; only what these tests use is described here.
// biome-ignore lint/suspicious/noExplicitAny: response records are read field by field, as a JS client does
type GhostRecord = Record<string, any>;
interface Pagination {
  page: number;
  limit: number | string;
  pages: number;
  total: number;
  next: number | null;
  prev: number | null;
}
type GhostList = GhostRecord[] & { meta: { pagination: Pagination } };
interface GhostResource {
  browse(options?: Record<string, unknown>): Promise<GhostList>;
  read(data: { id?: string; slug?: string }, options?: Record<string, unknown>): Promise<GhostRecord>;
}
interface GhostApi {
  posts: GhostResource;
  pages: GhostResource;
  tags: GhostResource;
  authors: GhostResource;
  settings: { browse(): Promise<GhostRecord> };
  tiers: { browse(): Promise<GhostList> };
  newsletters: { browse(): Promise<GhostList> };
}
interface GhostClientError extends Error {
  type?: string;
  response?: { status: number; data: unknown };
}
const GhostContentAPI = createRequire(import.meta.url)('@tryghost/content-api') as (opts: {
  url: string;
  key: string;
  version: string;
}) => GhostApi;

/** The client's rejection of `p`: its Ghost error type and the HTTP status. */
async function rejection(p: Promise<unknown>): Promise<{ type: string | undefined; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as GhostClientError;
    return { type: e.type ?? e.name, status: e.response?.status };
  }
  throw new Error('expected the Content API client to reject, but it resolved');
}

const ERROR_KEYS = ['message', 'context', 'type', 'details', 'property', 'help', 'code', 'id', 'ghostErrorCode'];
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;
const slugs = (list: GhostRecord[]) => list.map((x) => x.slug as string);

describe.each(databaseKinds)('Ghost Content API on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let origin = '';
  let t: TestTenant;
  let other: TestTenant;
  let bulk: TestTenant;
  let bob: TestUser;
  let carol: TestUser;
  let key = '';
  let otherKey = '';
  let bulkKey = '';
  const ids: Record<string, string> = {};
  const tagIds: Record<string, string> = {};
  /** Every body a plain-fetch request got back: none may hold an email address. */
  const bodies: string[] = [];

  const staff = async (
    method: 'POST' | 'PATCH' | 'PUT',
    url: string,
    tenant: TestTenant,
    user: TestUser,
    payload?: object,
  ) => {
    const res = await app.inject({ method, url: `/api/v1${url}`, headers: tenant.as(user), payload: payload ?? {} });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json().data;
  };

  /** A post (or page) through the staff API, published at `publishedAt` unless `status` says otherwise. */
  async function seedPost(
    tenant: TestTenant,
    p: {
      title: string;
      slug: string;
      /** The name in `ids` (default: the slug). */
      ref?: string;
      tags?: string[];
      authors?: string[];
      featured?: boolean;
      body?: string;
      customExcerpt?: string;
      publishedAt?: string;
      status?: 'draft' | 'scheduled' | 'archived' | 'future';
      type?: 'post' | 'page';
    },
  ) {
    const base = p.type === 'page' ? '/pages' : '/posts';
    const { publishedAt, status, type: _type, ref, ...fields } = p;
    const created = await staff('POST', base, tenant, tenant.owner, { body: `Body of ${p.title}`, ...fields });
    ids[ref ?? p.slug] = created.id;
    if (status === 'draft') return;
    if (status === 'scheduled') {
      await staff('POST', `${base}/${created.id}/schedule`, tenant, tenant.owner, {
        publishAt: new Date(Date.now() + 86_400_000).toISOString(),
      });
      return;
    }
    await staff('POST', `${base}/${created.id}/publish`, tenant, tenant.owner);
    if (status === 'archived') await staff('POST', `${base}/${created.id}/archive`, tenant, tenant.owner);
    // Published "in the future": status published, but its time has not come.
    const at = status === 'future' ? new Date(Date.now() + 86_400_000).toISOString() : publishedAt;
    if (at) await tdb.db.query('UPDATE posts SET published_at = $1 WHERE id = $2', [at, created.id]);
  }

  const newKey = async (tenant: TestTenant) =>
    (await staff('POST', '/content-keys', tenant, tenant.owner, { name: 'Site' })).key as string;

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app } = await createTestStack(tdb.db, { BASE_HOST: 'blog.test' }));
    t = await createTenant(app);
    bob = await createMember(app, t, 'editor');
    carol = await createMember(app, t, 'author');
    other = await createTenant(app);
    bulk = await createTenant(app);

    await staff('PATCH', `/authors/${t.owner.id}`, t, t.owner, { slug: 'alice', bio: 'Writes things' });
    await staff('PATCH', `/authors/${bob.id}`, t, t.owner, { slug: 'bob', website: 'https://bob.example.org' });
    await staff('PATCH', `/authors/${carol.id}`, t, t.owner, { slug: 'carol' });
    const alice = t.owner.id;

    // Published, oldest first: alpha (Jan) … echo (May).
    await seedPost(t, {
      title: 'Alpha',
      slug: 'alpha',
      tags: ['News', 'Engineering'],
      authors: [alice],
      featured: true,
      publishedAt: '2024-01-10T10:00:00.000Z',
    });
    await seedPost(t, {
      title: 'Bravo',
      slug: 'bravo',
      tags: ['Engineering', '#hidden'],
      authors: [bob.id, alice],
      publishedAt: '2024-02-10T10:00:00.000Z',
    });
    await seedPost(t, {
      title: 'Charlie',
      slug: 'charlie',
      tags: ['Product'],
      authors: [alice],
      featured: true,
      publishedAt: '2024-03-10T10:00:00.000Z',
    });
    await seedPost(t, {
      title: 'Delta',
      slug: 'delta',
      tags: ['#hidden', 'News'],
      authors: [bob.id],
      publishedAt: '2024-04-10T10:00:00.000Z',
    });
    await seedPost(t, {
      title: 'Echo',
      slug: 'echo',
      authors: [alice],
      body: '# Heading\n\nSome *emphasis* here.',
      customExcerpt: 'A custom excerpt',
      publishedAt: '2024-05-10T10:00:00.000Z',
    });
    // Not for readers.
    await seedPost(t, {
      title: 'Draft Post',
      slug: 'draft-post',
      tags: ['News', 'Drafty'],
      authors: [carol.id, bob.id],
      status: 'draft',
    });
    await seedPost(t, { title: 'Scheduled Post', slug: 'scheduled-post', tags: ['News'], status: 'scheduled' });
    await seedPost(t, { title: 'Archived Post', slug: 'archived-post', tags: ['News'], status: 'archived' });
    await seedPost(t, { title: 'Future Post', slug: 'future-post', tags: ['Product'], status: 'future' });
    // Pages are their own resource; a page's tags and authors do not count as posts.
    await seedPost(t, {
      title: 'About',
      slug: 'about',
      type: 'page',
      tags: ['News'],
      authors: [alice],
      publishedAt: '2024-01-01T00:00:00.000Z',
    });
    await seedPost(t, { title: 'Draft Page', slug: 'draft-page', type: 'page', status: 'draft' });

    // A public tag on no post at all.
    await staff('POST', '/tags', t, t.owner, { name: 'Unrelated' });
    const staffTags = (await app.inject({ url: '/api/v1/tags', headers: t.as(t.owner) })).json().data;
    for (const tag of staffTags as Array<{ id: string; slug: string }>) tagIds[tag.slug] = tag.id;
    expect(tagIds['hash-hidden']).toBeDefined();

    // Another tenant with a post whose slug and tag collide with ours.
    await seedPost(other, {
      title: 'Their Alpha',
      slug: 'their-alpha',
      tags: ['News'],
      publishedAt: '2024-06-01T00:00:00.000Z',
    });
    await seedPost(other, {
      title: 'Echo of theirs',
      slug: 'echo',
      ref: 'their-echo',
      publishedAt: '2024-06-02T00:00:00.000Z',
    });

    // 105 published posts, cheaply, for limit=all.
    await tdb.db.query(
      `INSERT INTO posts (tenant_id, author_id, title, slug, body, status, published_at)
       SELECT $1, $2, 'Bulk ' || g, 'bulk-' || g, 'x', 'published', now() - g * interval '1 minute'
         FROM generate_series(1, 105) g`,
      [bulk.id, bulk.owner.id],
    );

    await staff('PUT', `/tenants/${t.id}/settings`, t, t.owner, {
      title: 'The Alpha Times',
      description: 'News from A',
      lang: 'fr',
    });

    key = await newKey(t);
    otherKey = await newKey(other);
    bulkKey = await newKey(bulk);

    await app.listen({ port: 0, host: '127.0.0.1' });
    origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const client = (k = key, tenant: TestTenant = t, version = 'v5.0') =>
    GhostContentAPI({ url: `${origin}/s/${tenant.slug}`, key: k, version });

  /** A plain GET (its body kept for the email sweep). */
  async function get(path: string) {
    const res = await fetch(`${origin}${path}`);
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  it('browses published posts newest first, with exact pagination meta', async () => {
    const all = await client().posts.browse();
    expect(slugs(all)).toEqual(['echo', 'delta', 'charlie', 'bravo', 'alpha']);
    expect(all.meta.pagination).toEqual({ page: 1, limit: 15, pages: 1, total: 5, next: null, prev: null });

    const page2 = await client().posts.browse({ limit: 2, page: 2 });
    expect(slugs(page2)).toEqual(['charlie', 'bravo']);
    expect(page2.meta.pagination).toEqual({ page: 2, limit: 2, pages: 3, total: 5, next: 3, prev: 1 });
    const page3 = await client().posts.browse({ limit: 2, page: 3 });
    expect(slugs(page3)).toEqual(['alpha']);
    expect(page3.meta.pagination).toEqual({ page: 3, limit: 2, pages: 3, total: 5, next: null, prev: 2 });
    const beyond = await client().posts.browse({ limit: 2, page: 4 });
    expect(beyond).toHaveLength(0);
    expect(beyond.meta.pagination).toMatchObject({ page: 4, total: 5, next: null, prev: 3 });
  });

  it('reads a post by id and by slug, in Ghost’s shape', async () => {
    const byId = await client().posts.read({ id: ids.alpha! });
    expect(byId).toMatchObject({
      id: ids.alpha,
      uuid: ids.alpha,
      title: 'Alpha',
      slug: 'alpha',
      featured: true,
      visibility: 'public',
      published_at: '2024-01-10T10:00:00.000Z',
      url: `http://${t.slug}.blog.test/alpha/`,
    });
    expect(byId.html).toContain('Body of Alpha');
    expect(byId).not.toHaveProperty('tags');
    expect(byId).not.toHaveProperty('authors');
    const bySlug = await client().posts.read({ slug: 'echo' });
    expect(bySlug).toMatchObject({ id: ids.echo, title: 'Echo', custom_excerpt: 'A custom excerpt' });
    expect(bySlug.excerpt).toBe('A custom excerpt');
    // Their "echo" is theirs: read with their key on their site.
    const theirs = await client(otherKey, other).posts.read({ slug: 'echo' });
    expect(theirs).toMatchObject({ id: ids['their-echo'], title: 'Echo of theirs' });
    expect(theirs.id).not.toBe(ids.echo);
  });

  it('include=tags,authors embeds them in order, primary_tag/primary_author first, never an internal tag', async () => {
    const bravo = await client().posts.read({ slug: 'bravo' }, { include: 'tags,authors' });
    expect(slugs(bravo.tags)).toEqual(['engineering']);
    expect(bravo.primary_tag).toEqual(bravo.tags[0]);
    expect(slugs(bravo.authors)).toEqual(['bob', 'alice']);
    expect(bravo.primary_author).toEqual(bravo.authors[0]);
    expect(bravo.authors[1]).toMatchObject({ id: t.owner.id, name: t.owner.name, bio: 'Writes things' });
    expect(bravo.authors[0]).toMatchObject({ id: bob.id, website: 'https://bob.example.org' });

    const list = await client().posts.browse({ include: 'tags,authors' });
    const by = Object.fromEntries(list.map((p) => [p.slug, p]));
    expect(slugs(by.alpha!.tags)).toEqual(['news', 'engineering']);
    expect(by.alpha!.primary_tag.slug).toBe('news');
    // Delta's first tag is internal: its primary tag is its first public one.
    expect(slugs(by.delta!.tags)).toEqual(['news']);
    expect(by.delta!.primary_tag.slug).toBe('news');
    expect(by.echo!.tags).toEqual([]);
    expect(by.echo!.primary_tag).toBeNull();
    expect(by.delta!.primary_author.slug).toBe('bob');
    expect(JSON.stringify(list)).not.toMatch(/hidden/);
    // Only what was asked for.
    const onlyTags = await client().posts.read({ slug: 'alpha' }, { include: 'tags' });
    expect(onlyTags).toHaveProperty('primary_tag');
    expect(onlyTags).not.toHaveProperty('authors');
  });

  it('lists public tags only (never an internal one), by name; reads one by id or slug', async () => {
    const tags = await client().tags.browse();
    expect(slugs(tags)).toEqual(['drafty', 'engineering', 'news', 'product', 'unrelated']);
    expect(tags.meta.pagination).toEqual({ page: 1, limit: 15, pages: 1, total: 5, next: null, prev: null });
    expect(tags[0]).not.toHaveProperty('count');
    const news = await client().tags.read({ slug: 'news' });
    expect(news).toMatchObject({ id: tagIds.news, name: 'News', visibility: 'public' });
    expect(news).not.toHaveProperty('count');
    expect((await client().tags.read({ id: tagIds.product! })).slug).toBe('product');
    expect(await rejection(client().tags.read({ slug: 'hash-hidden' }))).toEqual({
      type: 'NotFoundError',
      status: 404,
    });
    expect(await rejection(client().tags.read({ id: tagIds['hash-hidden']! }))).toEqual({
      type: 'NotFoundError',
      status: 404,
    });
    // Ordering by the count works without including it (the ORDER BY qualifies its columns).
    const byCount = await client().tags.browse({ order: 'count.posts desc, slug asc', limit: 3 });
    expect(slugs(byCount)).toEqual(['engineering', 'news', 'product']);
  });

  // A regression test: the count's correlated subquery once named the outer row unqualified (42702, a 500).
  it('include=count.posts on tags counts published posts only (not drafts, scheduled, archived, future or pages)', async () => {
    const tags = await client().tags.browse({ include: 'count.posts' });
    expect(tags.map((x) => [x.slug, x.count.posts])).toEqual([
      ['drafty', 0],
      ['engineering', 2],
      ['news', 2],
      ['product', 1],
      ['unrelated', 0],
    ]);
    const news = await client().tags.read({ slug: 'news' }, { include: 'count.posts' });
    expect(news).toMatchObject({ id: tagIds.news, count: { posts: 2 } });
    const theirAuthors = await client(otherKey, other).authors.browse({ include: 'count.posts' });
    expect(theirAuthors.map((a) => [a.id, a.count.posts])).toEqual([[other.owner.id, 2]]);
    const theirNews = await client(otherKey, other).tags.read({ slug: 'news' });
    expect(theirNews.id).not.toBe(tagIds.news);
  });

  it('lists only authors with published content, with count.posts counting published posts only', async () => {
    const authors = await client().authors.browse({ include: 'count.posts', order: 'slug asc' });
    expect(authors.map((a) => [a.slug, a.count.posts])).toEqual([
      ['alice', 4],
      ['bob', 2],
    ]);
    expect(authors.meta.pagination.total).toBe(2);
    const bobRead = await client().authors.read({ slug: 'bob' }, { include: 'count.posts' });
    expect(bobRead).toMatchObject({ id: bob.id, name: bob.name, count: { posts: 2 } });
    // Carol has only a draft.
    expect(await rejection(client().authors.read({ slug: 'carol' }))).toEqual({ type: 'NotFoundError', status: 404 });
    expect(await rejection(client().authors.read({ id: carol.id }))).toEqual({ type: 'NotFoundError', status: 404 });
  });

  it('fields=title,slug returns only those keys; formats=html,plaintext adds plaintext', async () => {
    const list = await client().posts.browse({ fields: 'title,slug' });
    expect(list).toHaveLength(5);
    for (const p of list) expect(Object.keys(p).sort()).toEqual(['slug', 'title']);
    const tags = await client().tags.browse({ fields: 'name' });
    for (const x of tags) expect(Object.keys(x)).toEqual(['name']);

    const both = await client().posts.read({ slug: 'echo' }, { formats: 'html,plaintext' });
    expect(both.html).toContain('<em>emphasis</em>');
    expect(both.plaintext).toContain('emphasis');
    expect(both.plaintext).not.toContain('<');
    const plainOnly = await client().posts.read({ slug: 'echo' }, { formats: 'plaintext' });
    expect(plainOnly).not.toHaveProperty('html');
    expect(plainOnly).toHaveProperty('plaintext');
    const byDefault = await client().posts.read({ slug: 'echo' });
    expect(byDefault).toHaveProperty('html');
    expect(byDefault).not.toHaveProperty('plaintext');
  });

  it('orders by an allowed field; an unknown order is a 400', async () => {
    expect(slugs(await client().posts.browse({ order: 'title asc' }))).toEqual([
      'alpha',
      'bravo',
      'charlie',
      'delta',
      'echo',
    ]);
    expect(slugs(await client().posts.browse({ order: 'published_at asc', limit: 2 }))).toEqual(['alpha', 'bravo']);
    expect(await rejection(client().posts.browse({ order: 'body asc' }))).toEqual({
      type: 'BadRequestError',
      status: 400,
    });
  });

  it.each([
    ['tag:news', ['delta', 'alpha']],
    ['tags:[news,product]', ['delta', 'charlie', 'alpha']],
    ['tag:-news', ['echo', 'charlie', 'bravo']],
    ['author:bob', ['delta', 'bravo']],
    ['authors:alice', ['echo', 'charlie', 'bravo', 'alpha']],
    ['primary_tag:engineering', ['bravo']],
    ['primary_tag:news', ['delta', 'alpha']],
    ['primary_author:bob', ['delta', 'bravo']],
    ['featured:true', ['charlie', 'alpha']],
    ['featured:false', ['echo', 'delta', 'bravo']],
    ['slug:[alpha,echo]', ['echo', 'alpha']],
    ["published_at:>'2024-02-15'", ['echo', 'delta', 'charlie']],
    ["published_at:<='2024-02-10 10:00:00'", ['bravo', 'alpha']],
    ['tag:news+featured:true', ['alpha']],
    ['tag:product,author:bob', ['delta', 'charlie', 'bravo']],
    ['(tag:news,tag:product)+author:alice', ['charlie', 'alpha']],
    ['featured:false+(tag:engineering,tag:product)', ['bravo']],
    ['tag:hash-hidden', []],
    ['tag:drafty', []],
  ])('filter %s', async (filter, expected) => {
    expect(slugs(await client().posts.browse({ filter }))).toEqual(expected);
  });

  it('filter id:-<id> excludes that post', async () => {
    const list = await client().posts.browse({ filter: `id:-${ids.alpha}` });
    expect(slugs(list)).toEqual(['echo', 'delta', 'charlie', 'bravo']);
    expect(list.meta.pagination.total).toBe(4);
  });

  it('filters pages, tags and authors too', async () => {
    expect(slugs(await client().pages.browse({ filter: 'tag:news' }))).toEqual(['about']);
    expect(slugs(await client().tags.browse({ filter: 'slug:[news,product]' }))).toEqual(['news', 'product']);
    expect(slugs(await client().authors.browse({ filter: 'slug:bob' }))).toEqual(['bob']);
  });

  it('the client is refused with a bad key and with another tenant’s key (401)', async () => {
    const unknown = GhostContentAPI({
      url: `${origin}/s/${t.slug}`,
      key: '0123456789abcdef0123456789',
      version: 'v5.0',
    });
    expect(await rejection(unknown.posts.browse())).toEqual({ type: 'UnauthorizedError', status: 401 });
    expect(await rejection(unknown.settings.browse())).toEqual({ type: 'UnauthorizedError', status: 401 });
    // B's valid key on A's site.
    expect(await rejection(client(otherKey).posts.browse())).toEqual({ type: 'UnauthorizedError', status: 401 });
    // A's key on A's site still works, and on B's site it is refused the same way.
    expect(await client().posts.browse({ limit: 1 })).toHaveLength(1);
    expect(await rejection(client(key, other).posts.browse())).toEqual({ type: 'UnauthorizedError', status: 401 });
  });

  // A regression test: the read routes' param schemas once dropped the prefix's :tenantSlug, and
  // the read fell back to the key's tenant.
  it('a read by slug or id with another tenant’s key on a tenant’s prefix is a 401', async () => {
    // "echo" exists in both tenants.
    expect(await rejection(client(otherKey).posts.read({ slug: 'echo' }))).toEqual({
      type: 'UnauthorizedError',
      status: 401,
    });
    expect(await rejection(client(otherKey).posts.read({ id: ids['their-echo']! }))).toEqual({
      type: 'UnauthorizedError',
      status: 401,
    });
    expect(await rejection(client(otherKey).tags.read({ slug: 'news' }))).toEqual({
      type: 'UnauthorizedError',
      status: 401,
    });
  });

  it('settings carry the title, description and language set through PUT settings', async () => {
    const s = await client().settings.browse();
    expect(s).toMatchObject({
      title: 'The Alpha Times',
      description: 'News from A',
      lang: 'fr',
      locale: 'fr',
      url: `http://${t.slug}.blog.test/`,
    });
    // B never set one: its name.
    expect((await client(otherKey, other).settings.browse()).title).toBe(other.name);
  });

  it('pages are separate from posts', async () => {
    const pages = await client().pages.browse({ include: 'tags,authors' });
    expect(slugs(pages)).toEqual(['about']);
    expect(pages[0]!.show_title_and_feature_image).toBe(true);
    expect(slugs(pages[0]!.authors)).toEqual(['alice']);
    expect((await client().pages.read({ id: ids.about! })).title).toBe('About');
    expect(await rejection(client().posts.read({ slug: 'about' }))).toEqual({ type: 'NotFoundError', status: 404 });
    expect(await rejection(client().posts.read({ id: ids.about! }))).toEqual({ type: 'NotFoundError', status: 404 });
    expect(await rejection(client().pages.read({ slug: 'alpha' }))).toEqual({ type: 'NotFoundError', status: 404 });
    expect(await rejection(client().pages.read({ slug: 'draft-page' }))).toEqual({
      type: 'NotFoundError',
      status: 404,
    });
  });

  it('tiers and newsletters are empty lists', async () => {
    const tiers = await client().tiers.browse();
    expect([...tiers]).toEqual([]);
    expect(tiers.meta.pagination).toMatchObject({ total: 0, pages: 1, next: null, prev: null });
    const newsletters = await client().newsletters.browse();
    expect([...newsletters]).toEqual([]);
    expect(newsletters.meta.pagination.total).toBe(0);
  });

  it.each(['draft-post', 'scheduled-post', 'archived-post', 'future-post', 'their-alpha'])(
    '%s is a 404 by slug and by id',
    async (slug) => {
      expect(await rejection(client().posts.read({ slug }))).toEqual({ type: 'NotFoundError', status: 404 });
      expect(await rejection(client().posts.read({ id: ids[slug]! }))).toEqual({ type: 'NotFoundError', status: 404 });
    },
  );

  it('drafts, scheduled, archived, future and other tenants’ posts are absent from lists and counts', async () => {
    const all = await client().posts.browse({ limit: 'all' });
    expect(slugs(all)).toEqual(['echo', 'delta', 'charlie', 'bravo', 'alpha']);
    expect(all.meta.pagination.total).toBe(5);
    expect(slugs(await client(otherKey, other).posts.browse())).toEqual(['echo', 'their-alpha']);
    const theirAuthors = await client(otherKey, other).authors.browse({ include: 'count.posts' });
    expect(theirAuthors.map((a) => [a.id, a.count.posts])).toEqual([[other.owner.id, 2]]);
    const theirNews = await client(otherKey, other).tags.read({ slug: 'news' });
    expect(theirNews.id).not.toBe(tagIds.news);
  });

  it('the v4 client (legacy /ghost/api/v4/content/ path) reads the same', async () => {
    const v4 = client(key, t, 'v4.0');
    expect(slugs(await v4.posts.browse({ filter: 'tag:news' }))).toEqual(['delta', 'alpha']);
    const res = await get(`/s/${t.slug}/ghost/api/v4/content/posts/?key=${key}&limit=1`);
    expect(res.status).toBe(200);
    expect(slugs(res.json().posts)).toEqual(['echo']);
    const bare = await get(`/ghost/api/v4/content/posts/slug/alpha/?key=${key}`);
    expect(bare.status).toBe(200);
    expect(bare.json().posts[0].id).toBe(ids.alpha);
    for (const v of ['v2', 'v3', 'v5', 'canary']) {
      expect((await get(`/ghost/api/${v}/content/tags/?key=${key}`)).status, v).toBe(200);
    }
  });

  it('an unknown API version is a 404 in Ghost’s envelope', async () => {
    for (const path of [
      `/ghost/api/v9/content/`,
      `/ghost/api/v9/content/posts/?key=${key}`,
      `/s/${t.slug}/ghost/api/v9/content/posts/?key=${key}`,
      `/ghost/api/v1/content/posts/?key=${key}`,
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.json().errors[0].type, path).toBe('NotFoundError');
    }
  });

  it('a missing key is a 403 NoPermissionError in exactly Ghost’s error shape', async () => {
    const res = await get(`/s/${t.slug}/ghost/api/content/posts/`);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = res.json();
    expect(Object.keys(body)).toEqual(['errors']);
    expect(body.errors).toHaveLength(1);
    const [e] = body.errors;
    expect(Object.keys(e)).toEqual(ERROR_KEYS);
    expect(e).toMatchObject({ type: 'NoPermissionError', message: 'Authorization failed' });
    expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
    const bare = await get('/ghost/api/content/settings/');
    expect(bare.status).toBe(403);
    expect(bare.json().errors[0].type).toBe('NoPermissionError');
  });

  it('unknown key, bad filter, bad limit, bad page and bad include are Ghost errors', async () => {
    const cases: Array<[string, number, string]> = [
      [`/ghost/api/content/posts/?key=0123456789abcdef0123456789`, 401, 'UnauthorizedError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${otherKey}`, 401, 'UnauthorizedError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&filter=nope:1`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&filter=email:x`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&filter=tag:(`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/tags/?key=${key}&filter=post_count:1`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&limit=0`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&limit=abc`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&limit=-1`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&page=0`, 400, 'BadRequestError'],
      [`/s/${t.slug}/ghost/api/content/posts/?key=${key}&include=secrets`, 400, 'BadRequestError'],
      [`/s/no-such-site/ghost/api/content/posts/?key=${key}`, 404, 'NotFoundError'],
    ];
    for (const [path, status, type] of cases) {
      const res = await get(path);
      expect(res.status, path).toBe(status);
      const body = res.json();
      expect(body.errors[0].type, path).toBe(type);
      expect(Object.keys(body.errors[0]), path).toEqual(ERROR_KEYS);
      expect(res.text, path).not.toMatch(/node_modules|\/work\/|\bat \w+ \(/);
    }
    const filterError = (await get(`/s/${t.slug}/ghost/api/content/posts/?key=${key}&filter=nope:1`)).json();
    expect(filterError.errors[0]).toMatchObject({ property: 'filter', context: 'Unknown filter field "nope"' });
  });

  it('limit=all (and any limit above 100) is capped at 100', async () => {
    const all = await get(`/s/${bulk.slug}/ghost/api/content/posts/?key=${bulkKey}&limit=all&fields=slug`);
    expect(all.status).toBe(200);
    const body = all.json();
    expect(body.posts).toHaveLength(100);
    expect(body.posts[0].slug).toBe('bulk-1');
    expect(body.meta.pagination).toEqual({ page: 1, limit: 100, pages: 2, total: 105, next: 2, prev: null });
    const huge = (await get(`/s/${bulk.slug}/ghost/api/content/posts/?key=${bulkKey}&limit=5000`)).json();
    expect(huge.posts).toHaveLength(100);
    const rest = await GhostContentAPI({ url: `${origin}/s/${bulk.slug}`, key: bulkKey, version: 'v5.0' }).posts.browse(
      { limit: 'all', page: 2 },
    );
    expect(slugs(rest)).toEqual(['bulk-101', 'bulk-102', 'bulk-103', 'bulk-104', 'bulk-105']);
  });

  it('/ghost/api/content/ without a site prefix resolves the tenant from the key', async () => {
    const mine = await get(`/ghost/api/content/posts/?key=${key}&fields=slug`);
    expect(mine.status).toBe(200);
    expect(slugs(mine.json().posts)).toEqual(['echo', 'delta', 'charlie', 'bravo', 'alpha']);
    const theirs = await get(`/ghost/api/content/posts/?key=${otherKey}&fields=slug`);
    expect(slugs(theirs.json().posts)).toEqual(['echo', 'their-alpha']);
    // The same path, two keys: never the other's cached answer.
    expect((await get(`/ghost/api/content/settings/?key=${key}`)).json().settings.title).toBe('The Alpha Times');
    expect((await get(`/ghost/api/content/settings/?key=${otherKey}`)).json().settings.title).toBe(other.name);
  });

  it('on a tenant’s subdomain only that tenant’s key is accepted', async () => {
    const onHost = (k: string, host: string) =>
      app.inject({ url: `/ghost/api/content/posts/?key=${k}&fields=slug`, headers: { host } });
    const ok = await onHost(key, `${t.slug}.blog.test`);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(slugs(ok.json().posts)).toHaveLength(5);
    const refused = await onHost(otherKey, `${t.slug}.blog.test`);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().errors[0].type).toBe('UnauthorizedError');
  });

  it('no response body holds an email address', async () => {
    const site = `/s/${t.slug}/ghost/api/content`;
    const paths = [
      `${site}/posts/?key=${key}&include=tags,authors&formats=html,plaintext&limit=all`,
      `${site}/posts/slug/bravo/?key=${key}&include=tags,authors`,
      `${site}/posts/${ids.bravo}/?key=${key}&include=authors`,
      `${site}/pages/?key=${key}&include=tags,authors`,
      `${site}/tags/?key=${key}&order=count.posts%20desc`,
      `${site}/tags/slug/news/?key=${key}`,
      `${site}/authors/?key=${key}&include=count.posts`,
      `${site}/authors/slug/alice/?key=${key}&include=count.posts`,
      `${site}/authors/${bob.id}/?key=${key}`,
      `${site}/authors/slug/carol/?key=${key}`,
      `${site}/settings/?key=${key}`,
      `${site}/tiers/?key=${key}`,
      `${site}/newsletters/?key=${key}`,
      `${site}/posts/?key=${key}&filter=authors.slug:bob&include=authors`,
      `/ghost/api/content/authors/?key=${otherKey}`,
    ];
    for (const p of paths) expect((await get(p)).status, p).toBeLessThan(500);
    expect(bodies.length).toBeGreaterThanOrEqual(paths.length);
    for (const body of bodies) expect(body).not.toMatch(EMAIL);
    // The users behind the authors do have emails: they are just never shown.
    for (const u of [t.owner, bob, carol]) expect(u.email).toMatch(EMAIL);
  });
});
