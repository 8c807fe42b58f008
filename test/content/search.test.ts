import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import { createMember, createTenant, type TestTenant, type TestUser, transitionPost } from '../helpers/factories.js';

type StaffHit = {
  id: string;
  type: 'post' | 'page';
  title: string;
  slug: string;
  excerpt: string;
  snippet: string;
  match: 'text' | 'fuzzy';
  rank: number;
  status: string;
  publishedAt: string | null;
};
type PublicHit = {
  id: string;
  type: string;
  title: string;
  slug: string;
  url: string;
  excerpt: string;
  snippet: string;
  published_at: string | null;
};

interface NewPost {
  title: string;
  body?: string;
  tags?: string[];
  customExcerpt?: string;
  /** Default: published. */
  status?: 'draft' | 'published';
  kind?: 'posts' | 'pages';
}

/**
 * Search (issue: PostgreSQL full-text search behind the search port): staff search at
 * /api/v1/search, readers at the Content API's /search/. Every test searches words no other
 * test writes, so each sees only its own posts.
 */
describe.each(databaseKinds)('search on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  /** English. */
  let t: TestTenant;
  let tKey: string;
  let viewer: TestUser;
  /** English too, with the same words as t in places. */
  let other: TestTenant;
  let otherKey: string;

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app } = await createTestStack(tdb.db));
    t = await createTenant(app);
    other = await createTenant(app);
    viewer = await createMember(app, t, 'viewer');
    for (const tenant of [t, other]) await setLang(tenant, 'en');
    tKey = await contentKey(t);
    otherKey = await contentKey(other);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  async function setLang(tenant: TestTenant, lang: string) {
    const res = await app.inject({
      method: 'PUT',
      url: `/api/v1/tenants/${tenant.id}/settings`,
      headers: tenant.owner.auth,
      payload: { lang },
    });
    expect(res.statusCode, res.body).toBe(200);
  }

  async function contentKey(tenant: TestTenant): Promise<string> {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/content-keys',
      headers: tenant.as(tenant.owner),
      payload: { name: 'Search' },
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().data.key;
  }

  async function write(tenant: TestTenant, p: NewPost) {
    const { status = 'published', kind: path = 'posts', ...fields } = p;
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/${path}`,
      headers: tenant.as(tenant.owner),
      payload: { body: 'Nothing to see.', ...fields },
    });
    expect(res.statusCode, res.body).toBe(201);
    const post = res.json().data as { id: string; slug: string; version: number };
    if (status === 'published' && path === 'posts') await transitionPost(app, tenant, tenant.owner, post.id, 'publish');
    if (status === 'published' && path === 'pages') {
      const pub = await app.inject({
        method: 'POST',
        url: `/api/v1/pages/${post.id}/publish`,
        headers: tenant.as(tenant.owner),
      });
      expect(pub.statusCode, pub.body).toBe(200);
    }
    return post;
  }

  const qs = (params: Record<string, string | number | undefined>) =>
    new URLSearchParams(
      Object.entries(params)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();

  const staffRaw = (tenant: TestTenant, params: Record<string, string | number | undefined>, user?: TestUser) =>
    app.inject({ method: 'GET', url: `/api/v1/search?${qs(params)}`, headers: tenant.as(user ?? tenant.owner) });

  async function staff(tenant: TestTenant, q: string, extra: Record<string, string | number> = {}, user?: TestUser) {
    const res = await staffRaw(tenant, { q, ...extra }, user);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { data: StaffHit[]; meta: { total: number } };
    return { hits: body.data, total: body.meta.total, titles: body.data.map((h) => h.title) };
  }

  const publicRaw = (params: Record<string, string | number | undefined>, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: `/ghost/api/content/search/?${qs(params)}`, headers });

  async function reader(key: string, q: string, extra: Record<string, string | number> = {}) {
    const res = await publicRaw({ key, q, ...extra });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as {
      posts: PublicHit[];
      meta: { pagination: { page: number; limit: number; pages: number; total: number; next: number | null } };
    };
    return { res, hits: body.posts, meta: body.meta, titles: body.posts.map((h) => h.title) };
  }

  const expectGhostError = (res: LightMyRequestResponse, status: number, type: string) => {
    expect(res.statusCode, res.body).toBe(status);
    const body = res.json();
    expect(Object.keys(body)).toEqual(['errors']);
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].type).toBe(type);
    expect(body.errors[0].message).toEqual(expect.any(String));
    return body.errors[0] as { message: string; context: string | null; property: string | null };
  };

  it('ranks a title hit above a tag or excerpt hit, above a body-only hit (however often the body repeats it)', async () => {
    await write(t, { title: 'Balloons over Bavaria', body: `${'Zeppelin. '.repeat(8)}Zeppelins everywhere.` });
    await write(t, { title: 'Airships and their crews', tags: ['Zeppelin'] });
    await write(t, { title: 'A short history of flight', customExcerpt: 'Where the zeppelin came from.' });
    await write(t, { title: 'The Zeppelin', body: 'A rigid airship.' });

    const { hits, total, titles } = await staff(t, 'zeppelin');
    expect(total).toBe(4);
    expect(titles[0]).toBe('The Zeppelin');
    expect(titles.slice(1, 3).sort()).toEqual(['A short history of flight', 'Airships and their crews']);
    expect(titles[3]).toBe('Balloons over Bavaria');
    expect(hits.every((h) => h.match === 'text')).toBe(true);
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.rank).toBeGreaterThanOrEqual(hits[i]!.rank);
    expect(hits[0]!.rank).toBeGreaterThan(hits[1]!.rank);
    expect(hits[2]!.rank).toBeGreaterThan(hits[3]!.rank);

    // Pages of the same ranking.
    const second = await staff(t, 'zeppelin', { limit: 2, offset: 2 });
    expect(second.titles).toEqual(titles.slice(2));
    expect(second.total).toBe(4);
    const past = await staff(t, 'zeppelin', { limit: 2, offset: 10 });
    expect(past.hits).toEqual([]);
    expect(past.total).toBe(4);

    // Readers get the same order.
    expect((await reader(tKey, 'zeppelin')).titles).toEqual(titles);
  });

  it('reads web-search syntax: "exact phrase", -excluded, or', async () => {
    await write(t, { title: 'Seaside one', body: 'The lazy otter sleeps by the pier.' });
    await write(t, { title: 'Seaside two', body: 'The otter at the pier is lazy and awake.' });
    await write(t, { title: 'Seaside three', body: 'A walrus dozes.' });
    await write(t, { title: 'Seaside four', body: 'A narwhal swims.' });

    expect((await staff(t, 'lazy otter')).titles.sort()).toEqual(['Seaside one', 'Seaside two']);
    expect((await staff(t, '"lazy otter"')).titles).toEqual(['Seaside one']);
    expect((await staff(t, 'otter -sleeps')).titles).toEqual(['Seaside two']);
    expect((await staff(t, 'otter -"lazy otter"')).titles).toEqual(['Seaside two']);
    expect((await staff(t, 'walrus or narwhal')).titles.sort()).toEqual(['Seaside four', 'Seaside three']);
    expect((await staff(t, 'walrus narwhal')).titles).toEqual([]);
    expect((await reader(tKey, '"lazy otter"')).titles).toEqual(['Seaside one']);
  });

  it("stems in the tenant's language: english", async () => {
    await write(t, { title: 'Morning routine', body: 'She runs along the canal every day.' });
    expect((await staff(t, 'running')).titles).toEqual(['Morning routine']);
    expect((await reader(tKey, 'running')).titles).toEqual(['Morning routine']);
  });

  it('stems German for a German tenant, the documents written before the switch included', async () => {
    const de = await createTenant(app);
    const before = await write(de, { title: 'Alte Häuser', body: 'Die Häuser am Fluss sind alt.' });
    // Under the default (simple) configuration "haus" does not find "Häuser".
    expect((await staff(de, 'haus')).hits.filter((h) => h.match === 'text')).toEqual([]);
    await setLang(de, 'de');
    await write(de, { title: 'Tiere', body: 'Die Katzen schlafen.' });

    const haus = await staff(de, 'Haus');
    expect(haus.hits.map((h) => [h.id, h.match])).toEqual([[before.id, 'text']]);
    expect((await staff(de, 'Katze')).titles).toEqual(['Tiere']);
    // German stop words are not words to find.
    expect((await staff(de, 'die')).hits.filter((h) => h.match === 'text')).toEqual([]);
    const key = await contentKey(de);
    expect((await reader(key, 'katze')).titles).toEqual(['Tiere']);
  });

  it('forgives typos in titles, after every real match', async () => {
    await write(t, { title: 'Tuning PostgreSQL for heavy writes' });
    await write(t, { title: 'Kubernetes in production' });
    await write(t, { title: 'Notes from the field', body: 'Somebody wrote kubernetis in the runbook.' });

    const pg = await staff(t, 'postgress');
    expect(pg.titles).toEqual(['Tuning PostgreSQL for heavy writes']);
    expect(pg.hits[0]!.match).toBe('fuzzy');
    expect(pg.total).toBe(1);

    // "kubernets" finds it as a real match: english stems both to kubernet.
    expect((await staff(t, 'kubernets')).hits.map((h) => [h.title, h.match])).toEqual([
      ['Kubernetes in production', 'text'],
    ]);
    const k8s = await staff(t, 'kubernetis');
    expect(k8s.hits.map((h) => [h.title, h.match])).toEqual([
      ['Notes from the field', 'text'],
      ['Kubernetes in production', 'fuzzy'],
    ]);
    expect(k8s.total).toBe(2);
    // The fuzzy hit is the second of the list, also when paged.
    expect((await staff(t, 'kubernetis', { limit: 1, offset: 1 })).titles).toEqual(['Kubernetes in production']);
    // An excluded word excludes fuzzy hits too.
    expect((await staff(t, 'kubernetis -production')).titles).toEqual(['Notes from the field']);

    expect((await reader(tKey, 'kubernetis')).titles).toEqual(['Notes from the field', 'Kubernetes in production']);
    expect((await staff(t, 'xylophone')).hits).toEqual([]);
  });

  it('highlights the matches in an HTML snippet with everything else escaped', async () => {
    const body = [
      'Intro paragraph about breakfast.',
      '',
      'The `<script>alert("x")</script>` tag & the "word" marmalade, it\'s on toast.',
      '',
      'Later: more marmalade.',
    ].join('\n');
    await write(t, { title: 'Breakfast notes', body });
    const [hit] = (await staff(t, 'marmalade')).hits;
    expect(hit!.snippet).toContain('<mark>marmalade</mark>');
    expect(hit!.snippet).toContain('&lt;/script&gt;');
    expect(hit!.snippet).not.toContain('<script');
    expect(hit!.snippet).toContain('&amp;');
    // No markup but the marks.
    expect(hit!.snippet.replace(/<\/?mark>/g, '')).not.toMatch(/[<>]/);

    const pub = await reader(tKey, 'marmalade');
    expect(pub.hits[0]!.snippet).toBe(hit!.snippet);

    // A title hit has no match in the body: the snippet is the body's beginning, escaped.
    await write(t, { title: 'Gooseberry', body: 'Tart `<b>` and green.' });
    const [title] = (await staff(t, 'gooseberry')).hits;
    expect(title!.snippet).toContain('Tart &lt;b&gt; and green');
  });

  it('finds drafts, scheduled and pages for staff (any member), only published content for readers', async () => {
    const draft = await write(t, { title: 'Quokka draft', status: 'draft' });
    const published = await write(t, { title: 'Quokka published' });
    const page = await write(t, { title: 'Quokka page', kind: 'pages' });
    const scheduled = await write(t, { title: 'Quokka scheduled', status: 'draft' });
    const sch = await app.inject({
      method: 'POST',
      url: `/api/v1/posts/${scheduled.id}/schedule`,
      headers: t.as(t.owner),
      payload: { publishAt: new Date(Date.now() + 86_400_000).toISOString() },
    });
    expect(sch.statusCode, sch.body).toBe(200);

    const all = await staff(t, 'quokka', {}, viewer);
    expect(all.hits.map((h) => h.id).sort()).toEqual([draft.id, published.id, page.id, scheduled.id].sort());
    expect(Object.fromEntries(all.hits.map((h) => [h.title, h.status]))).toEqual({
      'Quokka draft': 'draft',
      'Quokka published': 'published',
      'Quokka page': 'published',
      'Quokka scheduled': 'scheduled',
    });
    expect(all.hits.find((h) => h.id === draft.id)!.publishedAt).toBeNull();
    expect((await staff(t, 'quokka', { type: 'page' })).titles).toEqual(['Quokka page']);
    expect((await staff(t, 'quokka', { type: 'post' })).titles).not.toContain('Quokka page');

    const pub = await reader(tKey, 'quokka');
    expect(pub.titles.sort()).toEqual(['Quokka page', 'Quokka published']);
    expect(pub.meta.pagination.total).toBe(2);
    expect((await reader(tKey, 'quokka', { type: 'page' })).titles).toEqual(['Quokka page']);
    // Not even by a misspelling of its title.
    expect((await reader(tKey, 'quokka drafft')).titles).toEqual([]);
  });

  it("never finds another tenant's posts, on either API", async () => {
    const theirs = await write(other, { title: 'Wombat burrows', body: 'All about the wombat.' });
    await write(other, { title: 'Wombat draft', status: 'draft' });

    expect((await staff(other, 'wombat')).hits.map((h) => h.title).sort()).toEqual(['Wombat burrows', 'Wombat draft']);
    expect((await reader(otherKey, 'wombat')).hits.map((h) => h.id)).toEqual([theirs.id]);

    // Neither by its words nor by a near-miss of its title.
    for (const q of ['wombat', 'wombatt burrows']) {
      expect((await staff(t, q)).hits).toEqual([]);
      expect((await staff(t, q)).total).toBe(0);
      expect((await reader(tKey, q)).hits).toEqual([]);
    }
    // A key is for its own tenant: t's site with other's key is unknown.
    const crossed = await app.inject({
      method: 'GET',
      url: `/s/${t.slug}/ghost/api/content/search/?${qs({ key: otherKey, q: 'wombat' })}`,
    });
    expectGhostError(crossed, 401, 'UnauthorizedError');
    // Not a member: the tenant does not exist for them.
    expectError(await staffRaw(t, { q: 'wombat' }, other.owner), 404, 'not_found');
  });

  it('finds an edited post by its new words at once (the document changes with the write)', async () => {
    const post = await write(t, { title: 'Pangolin facts', body: 'Scales and more scales.' });
    expect((await reader(tKey, 'pangolin')).titles).toEqual(['Pangolin facts']);

    const { version } = (
      await app.inject({ method: 'GET', url: `/api/v1/posts/${post.id}`, headers: t.as(t.owner) })
    ).json().data;
    const edit = await app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${post.id}`,
      headers: t.as(t.owner),
      payload: { title: 'Armadillo facts', body: 'Bony plates.', tags: ['Nocturnal'], version },
    });
    expect(edit.statusCode, edit.body).toBe(200);

    expect((await staff(t, 'armadillo')).titles).toEqual(['Armadillo facts']);
    expect((await staff(t, 'plates')).titles).toEqual(['Armadillo facts']);
    expect((await staff(t, 'nocturnal')).titles).toEqual(['Armadillo facts']);
    expect((await staff(t, 'pangolin')).hits).toEqual([]);
    // Readers too: the cached answer for "pangolin" went with the edit.
    expect((await reader(tKey, 'pangolin')).hits).toEqual([]);
    expect((await reader(tKey, 'armadillo')).titles).toEqual(['Armadillo facts']);
  });

  it('serves readers through the Content API with a key: Ghost-shaped, cached, with an ETag', async () => {
    const post = await write(t, {
      title: 'Lighthouse keeping',
      body: 'The lighthouse keeper climbs the stairs.',
      customExcerpt: 'A life at the lighthouse.',
    });
    const { res, hits, meta } = await reader(tKey, 'lighthouse');
    expect(hits).toHaveLength(1);
    const hit = hits[0]!;
    expect(Object.keys(hit).sort()).toEqual(
      ['excerpt', 'id', 'published_at', 'slug', 'snippet', 'title', 'type', 'url'].sort(),
    );
    expect(hit).toMatchObject({
      id: post.id,
      type: 'post',
      title: 'Lighthouse keeping',
      slug: post.slug,
      excerpt: 'A life at the lighthouse.',
    });
    expect(hit.url).toMatch(new RegExp(`/${post.slug}/$`));
    expect(hit.snippet).toContain('<mark>lighthouse</mark>');
    expect(new Date(hit.published_at!).getTime()).toBeLessThanOrEqual(Date.now());
    expect(meta.pagination).toEqual({ page: 1, limit: 15, pages: 1, total: 1, next: null, prev: null });

    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toMatch(/^public/);
    expect(String(res.headers['surrogate-key'])).toContain(`post-${post.id}`);
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^"/);
    const again = await publicRaw({ key: tKey, q: 'lighthouse' }, { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);

    // The same search on a path-prefixed site.
    const prefixed = await app.inject({
      method: 'GET',
      url: `/s/${t.slug}/ghost/api/content/search/?${qs({ key: tKey, q: 'lighthouse' })}`,
    });
    expect(prefixed.statusCode, prefixed.body).toBe(200);
    expect(prefixed.json().posts.map((p: PublicHit) => p.id)).toEqual([post.id]);

    // Paging, Ghost-style.
    await write(t, { title: 'Lighthouse two' });
    await write(t, { title: 'Lighthouse three' });
    const p2 = await reader(tKey, 'lighthouse', { limit: 2, page: 2 });
    expect(p2.hits).toHaveLength(1);
    expect(p2.meta.pagination).toEqual({ page: 2, limit: 2, pages: 2, total: 3, next: null, prev: 1 });

    expectGhostError(await publicRaw({ q: 'lighthouse' }), 403, 'NoPermissionError');
    expectGhostError(await publicRaw({ key: 'x'.repeat(26), q: 'lighthouse' }), 401, 'UnauthorizedError');
    expectGhostError(await publicRaw({ key: tKey, q: 'lighthouse', limit: 'lots' }), 400, 'BadRequestError');
    expectGhostError(await publicRaw({ key: tKey, q: 'lighthouse', type: 'tag' }), 400, 'BadRequestError');
  });

  it('answers a missing or blank query with 400, in each API its own error shape', async () => {
    for (const q of [undefined, '', '   ']) {
      const e = expectError(await staffRaw(t, { q }), 400, 'validation_failed');
      expect(fieldsOf(e)).toEqual(['querystring.q']);
      const g = expectGhostError(await publicRaw({ key: tKey, q }), 400, 'BadRequestError');
      expect(g.property).toBe('q');
    }
    expectError(await staffRaw(t, { q: 'x'.repeat(201) }), 400, 'validation_failed');
    expectGhostError(await publicRaw({ key: tKey, q: 'x'.repeat(201) }), 400, 'BadRequestError');
    expectError(await staffRaw(t, { q: 'ok', limit: 51 }), 400, 'validation_failed');
    expectError(await staffRaw(t, { q: 'ok', type: 'tag' }), 400, 'validation_failed');
    expectError(await app.inject({ method: 'GET', url: '/api/v1/search?q=ok', headers: { 'x-tenant-id': t.id } }), 401);
  });

  it('takes any text as a query: injection-ish input is just text', async () => {
    await write(t, { title: 'Harmless tables', body: 'Posts about tables and chairs.' });
    const queries = [
      "'; drop table posts; --",
      ':*',
      '&|!()',
      'a & b | !c <-> d',
      '"unterminated phrase',
      '-',
      '""',
      'or',
      "\\'\\\\",
      '<script>alert(1)</script>',
      '%_%',
      '😀 émoji',
    ];
    for (const q of queries) {
      const s = await staffRaw(t, { q });
      expect(s.statusCode, `${JSON.stringify(q)}: ${s.body}`).toBe(200);
      const r = await publicRaw({ key: tKey, q });
      expect(r.statusCode, `${JSON.stringify(q)}: ${r.body}`).toBe(200);
    }
    // A NUL character is not text at all: a 400, as everywhere in the API.
    expect((await staffRaw(t, { q: 'tables\u0000chairs' })).statusCode).toBe(400);
    expect((await publicRaw({ key: tKey, q: 'tables\u0000chairs' })).statusCode).toBe(400);
    // Nothing was dropped, and the words of the injection are searched as words.
    expect((await staff(t, "'; drop table posts; --")).hits).toEqual([]);
    expect((await staff(t, 'tables chairs')).titles).toEqual(['Harmless tables']);
  });
});
