import escapeHtml from 'escape-html';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import Parser from 'rss-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createMember, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

/**
 * Feeds and discovery per tenant (RSS 2.0, Atom 1.0, JSON Feed 1.1, sitemap.xml, robots.txt,
 * llms.txt), under /s/:tenantSlug and on the tenant's host: each document read back with a real
 * parser (rss-parser, fast-xml-parser) or validated against the format's rules.
 */

const PUBLIC_URL = 'https://blog.example.com';
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;
const ATOM_NS = 'http://www.w3.org/2005/Atom';
const SITEMAP_NS = 'http://www.sitemaps.org/schemas/sitemap/0.9';
const DOCUMENTS = ['rss/', 'atom.xml', 'feed.json', 'sitemap.xml', 'robots.txt', 'llms.txt'] as const;
const CONTENT_TYPES: Record<(typeof DOCUMENTS)[number], string> = {
  'rss/': 'application/rss+xml; charset=utf-8',
  'atom.xml': 'application/atom+xml; charset=utf-8',
  'feed.json': 'application/feed+json; charset=utf-8',
  'sitemap.xml': 'application/xml; charset=utf-8',
  'robots.txt': 'text/plain; charset=utf-8',
  'llms.txt': 'text/plain; charset=utf-8',
};

// What rss-parser does not map by itself: every author (it keeps the first) and Atom's categories.
type RawAuthor = string | { name?: string[]; uri?: string[]; email?: string[] };
type RawCategory = { $: { term: string; label?: string; scheme?: string } };
type Extra = { allAuthors?: RawAuthor[]; atomCategories?: RawCategory[]; 'content:encoded'?: string; id?: string };
const feedParser = new Parser<Record<string, unknown>, Extra>({
  customFields: {
    item: [
      ['author', 'allAuthors', { keepArray: true }],
      ['category', 'atomCategories', { keepArray: true }],
    ],
  },
});
const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: (name) => name === 'url' });

// JSON Feed 1.1 (https://jsonfeed.org/version/1.1): what the spec requires, and the types of what it allows.
const jsonFeedAuthor = z
  .object({ name: z.string().optional(), url: z.url().optional(), avatar: z.url().optional() })
  .refine((a) => a.name !== undefined || a.url !== undefined || a.avatar !== undefined, 'an author needs a member');
const jsonFeed = z.object({
  version: z.literal('https://jsonfeed.org/version/1.1'),
  title: z.string().min(1),
  home_page_url: z.url().optional(),
  feed_url: z.url().optional(),
  description: z.string().optional(),
  icon: z.url().optional(),
  favicon: z.url().optional(),
  language: z.string().optional(),
  authors: z.array(jsonFeedAuthor).optional(),
  items: z.array(
    z
      .object({
        id: z.string().min(1),
        url: z.url().optional(),
        title: z.string().optional(),
        content_html: z.string().optional(),
        content_text: z.string().optional(),
        summary: z.string().optional(),
        image: z.url().optional(),
        date_published: z.iso.datetime({ offset: true }).optional(),
        date_modified: z.iso.datetime({ offset: true }).optional(),
        authors: z.array(jsonFeedAuthor).optional(),
        tags: z.array(z.string()).optional(),
      })
      .refine((i) => i.content_html !== undefined || i.content_text !== undefined, 'content_html or content_text'),
  ),
});

const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
const iso = (d: unknown) => new Date(d as string).toISOString();

describe.each(databaseKinds)('feeds on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let other: TestTenant;
  let carol: TestUser;
  let site = '';
  const ids: Record<string, string> = {};
  const html: Record<string, string> = {};

  const staff = async (method: 'POST' | 'PUT', url: string, tenant: TestTenant, payload?: object) => {
    const res = await app.inject({
      method,
      url: `/api/v1${url}`,
      headers: tenant.as(tenant.owner),
      payload: payload ?? {},
    });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json().data;
  };

  /** A post (or page) through the staff API, published `publishedAt` unless `status` says otherwise. */
  async function seed(
    tenant: TestTenant,
    p: {
      title: string;
      slug: string;
      body?: string;
      tags?: string[];
      authors?: string[];
      featured?: boolean;
      customExcerpt?: string;
      publishedAt?: string;
      status?: 'draft' | 'scheduled' | 'future' | 'archived';
      type?: 'post' | 'page';
    },
  ) {
    const base = p.type === 'page' ? '/pages' : '/posts';
    const { publishedAt, status, type: _type, ...fields } = p;
    const created = await staff('POST', base, tenant, { body: `Body of ${p.title}`, ...fields });
    ids[p.slug] = created.id;
    html[p.slug] = created.html;
    if (status === 'draft') return;
    if (status === 'scheduled') {
      await staff('POST', `${base}/${created.id}/schedule`, tenant, { publishAt: hoursAgo(-24) });
      return;
    }
    await staff('POST', `${base}/${created.id}/publish`, tenant);
    if (status === 'archived') await staff('POST', `${base}/${created.id}/archive`, tenant);
    // Published "in the future": status published, but its time has not come.
    const at = status === 'future' ? hoursAgo(-24) : publishedAt;
    if (at) await tdb.db.query('UPDATE posts SET published_at = $1 WHERE id = $2', [at, created.id]);
  }

  const get = (path: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: path, headers });
  const doc = async (path: string, tenant: TestTenant = t) => {
    const res = await get(`/s/${tenant.slug}/${path}`);
    expect(res.statusCode, `${path}: ${res.body}`).toBe(200);
    return res;
  };
  const postUrl = (slug: string) => `${site}/${slug}/`;
  const authorSlug = async (user: TestUser) =>
    (await tdb.db.query('SELECT slug FROM memberships WHERE tenant_id = $1 AND user_id = $2', [t.id, user.id])).rows[0]!
      .slug as string;

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app } = await createTestStack(tdb.db, { PUBLIC_URL }));
    t = await createTenant(app);
    other = await createTenant(app);
    carol = await createMember(app, t, 'author');
    site = `${PUBLIC_URL}/s/${t.slug}`;
    await staff('PUT', `/tenants/${t.id}/settings`, t, {
      title: 'The Quire Gazette',
      description: 'Notes & news <weekly>',
      lang: 'en-GB',
    });

    await seed(t, {
      title: 'Alpha launch',
      slug: 'alpha',
      body: '# Alpha\n\nThe **full** body of alpha, with [a link](https://example.org/a?x=1&y=2).\n\nA second paragraph.',
      tags: ['News', 'Engineering Notes'],
      customExcerpt: 'The custom excerpt of alpha',
      publishedAt: hoursAgo(3),
    });
    await seed(t, {
      title: 'Beta & <friends>',
      slug: 'beta',
      body: 'Beta body: `a < b && c > d`.',
      // Ends a CDATA section twice: the feeds must stay well-formed.
      customExcerpt: 'Beta: a ]]> b ]]> c',
      tags: ['News', '#internal'],
      authors: [t.owner.id, carol.id],
      featured: true,
      publishedAt: hoursAgo(2),
    });
    await seed(t, { title: 'Gamma', slug: 'gamma', publishedAt: hoursAgo(1) });
    await seed(t, { title: 'Draft post', slug: 'draft-post', tags: ['Drafty'], status: 'draft' });
    await seed(t, { title: 'Scheduled post', slug: 'scheduled-post', status: 'scheduled' });
    await seed(t, { title: 'Future post', slug: 'future-post', status: 'future' });
    await seed(t, { title: 'Archived post', slug: 'archived-post', status: 'archived' });
    await seed(t, { title: 'About us', slug: 'about', type: 'page', customExcerpt: 'Who we are' });
    await seed(t, { title: 'Draft page', slug: 'draft-page', type: 'page', status: 'draft' });
    await seed(other, { title: 'Their post', slug: 'their-post', tags: ['Theirs'] });
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const PUBLISHED = ['gamma', 'beta', 'alpha'];
  const HIDDEN = [
    'Draft post',
    'Scheduled post',
    'Future post',
    'Archived post',
    'About us',
    'Draft page',
    'Their post',
  ];

  it('RSS 2.0: well-formed, version 2.0, newest first, full content, public tags, authors by name', async () => {
    const res = await doc('rss/');
    expect(res.headers['content-type']).toBe(CONTENT_TYPES['rss/']);
    expect(XMLValidator.validate(res.body)).toBe(true);
    const root = xml.parse(res.body).rss;
    expect(root['@_version']).toBe('2.0');
    expect(root['@_xmlns:content']).toBe('http://purl.org/rss/1.0/modules/content/');

    const feed = await feedParser.parseString(res.body);
    expect(feed).toMatchObject({
      title: 'The Quire Gazette',
      description: 'Notes & news <weekly>',
      link: `${site}/`,
      language: 'en-GB',
      feedUrl: `${site}/rss/`,
    });
    expect(feed.items.map((i) => i.link)).toEqual(PUBLISHED.map(postUrl));
    expect(feed.items.map((i) => i.title)).toEqual(['Gamma', 'Beta & <friends>', 'Alpha launch']);
    const [gamma, beta, alpha] = feed.items;
    // Full content: the rendered HTML, byte for byte (beta's `]]>` survives the CDATA section).
    expect(alpha!['content:encoded']).toBe(html.alpha);
    expect(alpha!['content:encoded']).toContain('<strong>full</strong>');
    expect(beta!['content:encoded']).toBe(html.beta);
    expect(alpha!.content).toBe('The custom excerpt of alpha');
    // The description is read as HTML: the plain-text excerpt arrives escaped (no live markup).
    expect(beta!.content).toBe(escapeHtml('Beta: a ]]> b ]]> c'));
    expect(alpha!.guid).toBe(ids.alpha);
    expect(new Date(alpha!.isoDate!).getTime()).toBeLessThan(new Date(beta!.isoDate!).getTime());
    // Public tags only, in order; no tags, no category.
    expect(alpha!.categories).toEqual(['News', 'Engineering Notes']);
    expect(beta!.categories).toEqual(['News']);
    expect(gamma!.categories).toBeUndefined();
    expect(beta!.allAuthors).toEqual([t.owner.name, carol.name]);
    expect(gamma!.allAuthors).toEqual([t.owner.name]);
  });

  it('Atom 1.0: well-formed, the Atom namespace, the same entries with content, categories and authors', async () => {
    const res = await doc('atom.xml');
    expect(res.headers['content-type']).toBe(CONTENT_TYPES['atom.xml']);
    expect(XMLValidator.validate(res.body)).toBe(true);
    const root = xml.parse(res.body).feed;
    expect(root['@_xmlns']).toBe(ATOM_NS);
    expect(root.id).toBe(`${site}/`);

    const feed = await feedParser.parseString(res.body);
    expect(feed).toMatchObject({ title: 'The Quire Gazette', link: `${site}/`, feedUrl: `${site}/atom.xml` });
    expect(feed.items.map((i) => i.link)).toEqual(PUBLISHED.map(postUrl));
    // Atom titles are typed html: the text escaped.
    expect(feed.items.map((i) => i.title)).toEqual(['Gamma', escapeHtml('Beta & <friends>'), 'Alpha launch']);
    const [gamma, beta, alpha] = feed.items;
    expect(alpha!.content).toBe(html.alpha);
    expect(beta!.content).toBe(html.beta);
    expect(alpha!.summary).toBe('The custom excerpt of alpha');
    expect(beta!.summary).toBe(escapeHtml('Beta: a ]]> b ]]> c'));
    expect(alpha!.id).toBe(`urn:uuid:${ids.alpha}`);
    expect(alpha!.atomCategories?.map((c) => [c.$.term, c.$.label])).toEqual([
      ['news', 'News'],
      ['engineering-notes', 'Engineering Notes'],
    ]);
    expect(beta!.atomCategories?.map((c) => c.$.term)).toEqual(['news']);
    expect(gamma!.atomCategories).toBeUndefined();
    const names = (i: (typeof feed.items)[number]) =>
      (i.allAuthors ?? []).map((a) => (typeof a === 'string' ? a : a.name?.[0]));
    expect(names(beta!)).toEqual([t.owner.name, carol.name]);
    const carolEntry = beta!.allAuthors?.[1] as { uri?: string[] } | undefined;
    expect(carolEntry?.uri?.[0]).toBe(`${site}/author/${await authorSlug(carol)}/`);
  });

  it('JSON Feed 1.1: valid by the spec, the same items with content_html, authors, tags and dates', async () => {
    const res = await doc('feed.json');
    expect(res.headers['content-type']).toBe(CONTENT_TYPES['feed.json']);
    const parsed = jsonFeed.safeParse(JSON.parse(res.body));
    expect(parsed.error).toBeUndefined();
    const feed = parsed.data!;
    expect(feed).toMatchObject({
      title: 'The Quire Gazette',
      description: 'Notes & news <weekly>',
      home_page_url: `${site}/`,
      feed_url: `${site}/feed.json`,
      language: 'en-GB',
    });
    expect(feed.items.map((i) => i.url)).toEqual(PUBLISHED.map(postUrl));
    expect(feed.items.map((i) => i.id)).toEqual(PUBLISHED.map((s) => ids[s]));
    const [gamma, beta, alpha] = feed.items;
    expect(beta!.title).toBe('Beta & <friends>');
    expect(beta!.summary).toBe('Beta: a ]]> b ]]> c');
    expect(alpha!.content_html).toBe(html.alpha);
    expect(alpha!.summary).toBe('The custom excerpt of alpha');
    expect(alpha!.tags).toEqual(['News', 'Engineering Notes']);
    expect(beta!.tags).toEqual(['News']);
    expect(gamma!.tags ?? []).toEqual([]);
    expect(beta!.authors).toEqual([
      { name: t.owner.name, url: `${site}/author/${await authorSlug(t.owner)}/` },
      { name: carol.name, url: `${site}/author/${await authorSlug(carol)}/` },
    ]);
    const published = await tdb.db.query('SELECT published_at, updated_at FROM posts WHERE id = $1', [ids.alpha]);
    expect(alpha!.date_published).toBe(iso(published.rows[0]!.published_at));
    expect(alpha!.date_modified).toBe(iso(published.rows[0]!.updated_at));
  });

  it('no feed carries a draft, scheduled, future or archived post, a page, or another tenant’s post', async () => {
    const rss = await feedParser.parseString((await doc('rss/')).body);
    const atom = await feedParser.parseString((await doc('atom.xml')).body);
    const json = JSON.parse((await doc('feed.json')).body) as { items: { title: string }[] };
    for (const titles of [
      rss.items.map((i) => i.title),
      atom.items.map((i) => i.title),
      json.items.map((i) => i.title),
    ]) {
      expect(titles).toHaveLength(3);
      for (const hidden of HIDDEN) expect(titles).not.toContain(hidden);
    }
    // The other tenant's feed: its own post only, titled by its name (it set no title).
    const theirs = await feedParser.parseString((await doc('rss/', other)).body);
    expect(theirs.title).toBe(other.name);
    expect(theirs.items.map((i) => i.title)).toEqual(['Their post']);
    expect(theirs.items[0]!.categories).toEqual(['Theirs']);
  });

  it('sitemap.xml: the sitemap namespace; every published post, page, tag and author with a lastmod', async () => {
    const res = await doc('sitemap.xml');
    expect(res.headers['content-type']).toBe(CONTENT_TYPES['sitemap.xml']);
    expect(XMLValidator.validate(res.body)).toBe(true);
    const urlset = xml.parse(res.body).urlset;
    expect(urlset['@_xmlns']).toBe(SITEMAP_NS);
    const entries = urlset.url as { loc: string; lastmod: string }[];
    const lastmod = new Map(entries.map((e) => [e.loc, e.lastmod]));
    for (const e of entries) expect(Number.isNaN(Date.parse(e.lastmod)), e.loc).toBe(false);

    const owner = await authorSlug(t.owner);
    const expected = [
      `${site}/`,
      ...[...PUBLISHED, 'about'].map(postUrl),
      `${site}/tag/news/`,
      `${site}/tag/engineering-notes/`,
      `${site}/author/${owner}/`,
      `${site}/author/${await authorSlug(carol)}/`,
    ];
    // Exactly these: no draft, scheduled, future or archived post, no draft page, no tag that only a
    // draft carries, no internal tag, nothing of the other tenant.
    expect([...lastmod.keys()].sort()).toEqual(expected.sort());

    const rows = await tdb.db.query('SELECT id, updated_at FROM posts WHERE tenant_id = $1', [t.id]);
    const updated = new Map(rows.rows.map((r) => [r.id as string, iso(r.updated_at)]));
    for (const slug of [...PUBLISHED, 'about'])
      expect(iso(lastmod.get(postUrl(slug))), slug).toBe(updated.get(ids[slug]!));
    // A tag's and an author's lastmod: the newest change among their published posts.
    expect(iso(lastmod.get(`${site}/tag/engineering-notes/`))).toBe(updated.get(ids.alpha!));
    const newest = [...PUBLISHED]
      .map((s) => updated.get(ids[s]!)!)
      .sort()
      .at(-1);
    expect(iso(lastmod.get(`${site}/author/${owner}/`))).toBe(newest);
  });

  it('robots.txt allows everything and points at the sitemap', async () => {
    const res = await doc('robots.txt');
    expect(res.headers['content-type']).toBe(CONTENT_TYPES['robots.txt']);
    const lines = res.body.split('\n');
    expect(lines).toContain('User-agent: *');
    expect(lines).toContain('Allow: /');
    expect(lines).toContain(`Sitemap: ${site}/sitemap.xml`);
    expect(lines.indexOf('User-agent: *')).toBeLessThan(lines.indexOf('Allow: /'));
    expect(res.body).not.toMatch(/^Disallow/m);
  });

  it('llms.txt: title, description, then the newest posts and the pages as links with excerpts', async () => {
    const res = await doc('llms.txt');
    expect(res.headers['content-type']).toBe(CONTENT_TYPES['llms.txt']);
    const lines = res.body.split('\n');
    expect(lines[0]).toBe('# The Quire Gazette');
    expect(lines).toContain('> Notes & news <weekly>');
    const posts = lines.indexOf('## Posts');
    const pages = lines.indexOf('## Pages');
    expect(posts).toBeGreaterThan(0);
    expect(pages).toBeGreaterThan(posts);
    const links = (from: number, to: number) => lines.slice(from, to).filter((l) => l.startsWith('- ['));
    const postLinks = links(posts, pages);
    expect(postLinks).toHaveLength(3);
    expect(postLinks[0]).toBe(`- [Gamma](${postUrl('gamma')}): Body of Gamma`);
    expect(postLinks[1]).toBe(`- [Beta & <friends>](${postUrl('beta')}): Beta: a ]]> b ]]> c`);
    expect(postLinks[2]).toBe(`- [Alpha launch](${postUrl('alpha')}): The custom excerpt of alpha`);
    expect(links(pages, lines.length)).toEqual([`- [About us](${postUrl('about')}): Who we are`]);
    for (const hidden of HIDDEN.filter((h) => h !== 'About us')) expect(res.body).not.toContain(hidden);
  });

  it.each(DOCUMENTS)('%s: ETag, 304 on If-None-Match, public s-maxage, the tenant’s surrogate key', async (path) => {
    const res = await doc(path);
    expect(res.headers['content-type']).toBe(CONTENT_TYPES[path]);
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(res.headers['cache-control']).toMatch(/^public\b/);
    expect(res.headers['cache-control']).toMatch(/s-maxage=\d+/);
    const keys = String(res.headers['surrogate-key']).split(' ');
    expect(keys).toContain(`t-${t.id}`);
    if (['rss/', 'atom.xml', 'feed.json', 'llms.txt'].includes(path)) expect(keys).toContain(`post-${ids.alpha}`);

    const again = await get(`/s/${t.slug}/${path}`, { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers.etag).toBe(etag);
    const stale = await get(`/s/${t.slug}/${path}`, { 'if-none-match': '"not-it"' });
    expect(stale.statusCode).toBe(200);
    expect(stale.body).toBe(res.body);
  });

  it('no document holds an email address', async () => {
    for (const tenant of [t, other]) {
      for (const path of DOCUMENTS) {
        const { body } = await doc(path, tenant);
        expect(body, path).not.toMatch(EMAIL);
        expect(body).not.toContain(t.owner.email);
        expect(body).not.toContain(carol.email);
      }
    }
  });

  it('/rss answers as /rss/, and query parameters change nothing', async () => {
    const canonical = await doc('rss/');
    const bare = await doc('rss');
    expect(bare.headers['content-type']).toBe(CONTENT_TYPES['rss/']);
    expect(bare.body).toBe(canonical.body);
    const queried = await get(`/s/${t.slug}/rss/?limit=1&filter=nope&page=9`);
    expect(queried.statusCode).toBe(200);
    expect(queried.headers.etag).toBe(canonical.headers.etag);
  });

  it('an unknown tenant, or the root without a tenant host, is a plain 404', async () => {
    const check = (res: LightMyRequestResponse) => {
      expect(res.statusCode, res.body).toBe(404);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.headers['cache-control']).not.toMatch(/public/);
      expect(res.body).not.toMatch(/\bat \S+:\d+/); // no stack
    };
    for (const path of DOCUMENTS) {
      check(await get(`/s/no-such-tenant/${path}`));
      check(await get(`/s/${t.slug.toUpperCase()}x/${path}`));
      // No BASE_HOST here: the root is no tenant's site.
      check(await get(`/${path}`, { host: `${t.slug}.blog.example.com` }));
    }
  });

  it('an empty publication has valid, empty feeds; a publish shows in every document on the next read', async () => {
    const fresh = await createTenant(app);
    const freshSite = `${PUBLIC_URL}/s/${fresh.slug}`;
    const before: Record<string, LightMyRequestResponse> = {};
    for (const path of DOCUMENTS) before[path] = await doc(path, fresh);
    for (const path of ['rss/', 'atom.xml', 'sitemap.xml'])
      expect(XMLValidator.validate(before[path]!.body)).toBe(true);
    expect((await feedParser.parseString(before['rss/']!.body)).items).toEqual([]);
    expect((await feedParser.parseString(before['atom.xml']!.body)).items).toEqual([]);
    expect(jsonFeed.parse(JSON.parse(before['feed.json']!.body)).items).toEqual([]);
    expect(xml.parse(before['sitemap.xml']!.body).urlset.url.map((u: { loc: string }) => u.loc)).toEqual([
      `${freshSite}/`,
    ]);

    const draft = await staff('POST', '/posts', fresh, {
      title: 'Hot off the press',
      body: 'Fresh news',
      tags: ['Hot'],
    });
    await staff('POST', `/posts/${draft.id}/publish`, fresh);
    const url = `${freshSite}/${draft.slug}/`;
    for (const path of DOCUMENTS) {
      const after = await doc(path, fresh);
      if (path === 'robots.txt') {
        expect(after.body).toBe(before[path]!.body);
        continue;
      }
      expect(after.headers.etag, path).not.toBe(before[path]!.headers.etag);
      expect(after.body, path).toContain(path === 'atom.xml' || path === 'rss/' ? 'Hot off the press' : url);
    }
    const rss = await feedParser.parseString((await doc('rss/', fresh)).body);
    expect(rss.items.map((i) => [i.title, i.link, i.categories])).toEqual([['Hot off the press', url, ['Hot']]]);
    const sitemap = xml.parse((await doc('sitemap.xml', fresh)).body).urlset.url.map((u: { loc: string }) => u.loc);
    expect(sitemap).toEqual(expect.arrayContaining([url, `${freshSite}/tag/hot/`]));

    // And an unpublish takes it out again.
    await staff('POST', `/posts/${draft.id}/unpublish`, fresh);
    expect((await feedParser.parseString((await doc('rss/', fresh)).body)).items).toEqual([]);
  });
});

describe.each(databaseKinds)('feeds on the tenant host ($name)', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let postSlug = '';

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app } = await createTestStack(tdb.db, { BASE_HOST: 'blog.test', PUBLIC_URL: 'https://api.blog.test' }));
    t = await createTenant(app);
    const headers = t.as(t.owner);
    const post = await app.inject({
      method: 'POST',
      url: '/api/v1/posts',
      headers,
      payload: { title: 'Hosted post', body: 'On its own host' },
    });
    postSlug = post.json().data.slug;
    const published = await app.inject({
      method: 'POST',
      url: `/api/v1/posts/${post.json().data.id}/publish`,
      headers,
    });
    expect(published.statusCode).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const onHost = (path: string, host: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: path, headers: { ...headers, host } });

  it.each(DOCUMENTS)('%s is served on <slug>.<BASE_HOST> with the host’s addresses', async (path) => {
    const site = `https://${t.slug}.blog.test`;
    const res = await onHost(`/${path}`, `${t.slug}.blog.test`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe(CONTENT_TYPES[path]);
    expect(String(res.headers['surrogate-key']).split(' ')).toContain(`t-${t.id}`);
    if (path === 'robots.txt') expect(res.body).toContain(`Sitemap: ${site}/sitemap.xml`);
    else expect(res.body).toContain(`${site}/${postSlug}/`);
    // Host names are case-insensitive, and a port changes nothing.
    const upper = await onHost(`/${path}`, `${t.slug.toUpperCase()}.Blog.Test:8080`);
    expect(upper.statusCode).toBe(200);
    expect(upper.headers.etag).toBe(res.headers.etag);
    const revalidated = await onHost(`/${path}`, `${t.slug}.blog.test`, { 'if-none-match': String(res.headers.etag) });
    expect(revalidated.statusCode).toBe(304);
    // The path-prefixed site is the same publication, with the same addresses.
    const prefixed = await onHost(`/s/${t.slug}/${path}`, 'api.blog.test');
    expect(prefixed.statusCode).toBe(200);
    expect(prefixed.body).toBe(res.body);
  });

  it('the base host itself, an unknown subdomain and another domain are 404s', async () => {
    for (const host of ['blog.test', 'no-such-tenant.blog.test', `${t.slug}.elsewhere.test`, `x.${t.slug}.blog.test`]) {
      for (const path of DOCUMENTS) {
        const res = await onHost(`/${path}`, host);
        expect(res.statusCode, `${host}/${path}`).toBe(404);
        expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      }
    }
  });

  it('the feed on the host parses as RSS 2.0 with the host’s links', async () => {
    const res = await onHost('/rss', `${t.slug}.blog.test`);
    expect(XMLValidator.validate(res.body)).toBe(true);
    const feed = await feedParser.parseString(res.body);
    expect(feed.link).toBe(`https://${t.slug}.blog.test/`);
    expect(feed.items.map((i) => [i.title, i.link])).toEqual([
      ['Hosted post', `https://${t.slug}.blog.test/${postSlug}/`],
    ]);
  });
});
