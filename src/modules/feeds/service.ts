import { Readable } from 'node:stream';
import { sql } from 'drizzle-orm';
import escapeHtml from 'escape-html';
import { Feed, type Item } from 'feed';
import { SitemapStream, streamToPromise } from 'sitemap';
import type { Database, Executor } from '../../platform/db/index.js';
import { posts } from '../../platform/db/schema.js';
import { notFound } from '../../shared/errors.js';
import { browsePosts, type PublicPostRow, readSite } from '../content-api/repository.js';
import { surrogateKey } from '../delivery/events.js';
import type { PublicBody } from '../delivery/http-cache.js';
import { deriveExcerpt } from '../posts/render.js';
import { cdata, linkText, oneLine, xmlText } from './format.js';
import * as repo from './repository.js';

/** How many of the newest posts the RSS, Atom and JSON feeds carry. */
export const FEED_ITEMS = 50;
/** How many of the newest posts (and pages) llms.txt lists. */
export const LLMS_ITEMS = 100;
/** The sitemap protocol's limit for one file. */
export const SITEMAP_MAX_URLS = 50_000;

export const feedContentTypes = {
  rss: 'application/rss+xml; charset=utf-8',
  atom: 'application/atom+xml; charset=utf-8',
  json: 'application/feed+json; charset=utf-8',
  sitemap: 'application/xml; charset=utf-8',
  text: 'text/plain; charset=utf-8',
} as const;

export interface FeedsDeps {
  db: Database;
  /** The tenant's public address, no trailing slash (the Content API service's `siteUrl`). */
  siteUrl: (slug: string) => string;
}

interface Site {
  url: string;
  title: string;
  description: string | undefined;
  lang: string;
  logo: string | undefined;
  icon: string | undefined;
}

// As the Content API orders them: posts newest first, pages by title, spelled as the indexes are built.
const newestFirst = [sql`${posts.publishedAt} desc nulls last`, sql`${posts.id} desc`];
const byTitle = [sql`${posts.title} asc nulls last`, sql`${posts.id} desc`];

const postUrl = (site: Site, slug: string) => `${site.url}/${slug}/`;
const tagUrl = (site: Site, slug: string) => `${site.url}/tag/${slug}/`;
const authorUrl = (site: Site, slug: string) => `${site.url}/author/${slug}/`;
const excerptOf = (p: PublicPostRow) => p.excerpt ?? deriveExcerpt(p.plaintext ?? '');
const newest = (dates: Date[], fallback: Date) =>
  dates.reduce((a, b) => (b.getTime() > a.getTime() ? b : a), dates[0] ?? fallback);

function postKeys(rows: PublicPostRow[]) {
  return rows.flatMap((p) => [
    surrogateKey.post(p.id),
    ...(p.tags ?? []).map((t) => surrogateKey.tag(t.id)),
    ...(p.authors ?? []).map((a) => surrogateKey.author(a.id)),
  ]);
}

/**
 * A tenant's feeds and discovery documents: RSS 2.0, Atom 1.0 and JSON Feed 1.1 (the `feed`
 * library), sitemap.xml (`sitemap`), robots.txt and llms.txt. Each read runs under the tenant role
 * with no caller, through the Content API's read model, so only published content appears; authors
 * appear by name and profile address only (never an email).
 */
export function createFeedsService(deps: FeedsDeps) {
  const read = <T>(tenantId: string, fn: (tx: Executor, site: Site) => Promise<T>) =>
    deps.db.withTenant({ tenantId, userId: null }, async (tx) => {
      const s = await readSite(tx, tenantId);
      if (!s) throw notFound('Site');
      const st = s.settings;
      return fn(tx, {
        url: deps.siteUrl(s.slug),
        title: st.title || s.name,
        description: st.description || undefined,
        lang: st.lang || 'en',
        logo: st.logo || undefined,
        icon: st.icon || undefined,
      });
    });

  /** The newest posts with their public tags and authors, and when the feed last changed. */
  const latest = (tenantId: string) =>
    read(tenantId, async (tx, site) => {
      const { rows } = await browsePosts(tx, tenantId, 'post', {
        order: newestFirst,
        limit: FEED_ITEMS,
        offset: 0,
        withTags: true,
        withAuthors: true,
      });
      // A date from the content, not the clock: the same content gives the same bytes (and ETag).
      const siteChanged = (await repo.siteUpdatedAt(tx, tenantId)) ?? new Date(0);
      const updated = newest([siteChanged, ...rows.map((p) => p.updatedAt)], siteChanged);
      return { site, rows, updated };
    });

  function feedOf(site: Site, updated: Date) {
    return new Feed({
      id: `${site.url}/`,
      title: xmlText(site.title),
      description: site.description && xmlText(site.description),
      link: `${site.url}/`,
      language: site.lang,
      updated,
      generator: 'Quire',
      image: site.logo,
      favicon: site.icon,
      feedLinks: { rss: `${site.url}/rss/`, atom: `${site.url}/atom.xml`, json: `${site.url}/feed.json` },
      // The publication as the feed's author: Atom needs one on the feed or on every entry.
      author: { name: xmlText(site.title), link: `${site.url}/` },
    });
  }

  /** One post as the `feed` library's item; `atom` for Atom's HTML-typed title and IRI ids. */
  function itemOf(p: PublicPostRow, site: Site, atom: boolean): Item {
    return {
      id: atom ? `urn:uuid:${p.id}` : p.id,
      // RSS titles are text (in CDATA); Atom's are typed html by the library, so escaped here.
      title: atom ? escapeHtml(xmlText(p.title)) : cdata(p.title),
      link: postUrl(site, p.slug),
      date: p.updatedAt,
      published: p.publishedAt ?? p.updatedAt,
      // The excerpt is plain text; RSS descriptions and Atom summaries are read as HTML: escaped.
      description: cdata(escapeHtml(excerptOf(p))) || undefined,
      content: cdata(p.html ?? ''),
      category: (p.tags ?? []).map((t) =>
        atom
          ? // xml-js escapes only quotes in attributes: a name with `<` keeps its slug as the term, no label.
            { term: t.slug, scheme: `${site.url}/tag/`, ...(!t.name.includes('<') && { name: xmlText(t.name) }) }
          : { name: xmlText(t.name) },
      ),
      // Name and profile address only: the library would print an email if it were given one.
      author: (p.authors ?? []).map((a) => ({ name: xmlText(a.name), link: authorUrl(site, a.slug) })),
    };
  }

  async function rss(tenantId: string): Promise<PublicBody> {
    const { site, rows, updated } = await latest(tenantId);
    const feed = feedOf(site, updated);
    for (const p of rows) feed.addItem(itemOf(p, site, false));
    return { contentType: feedContentTypes.rss, body: feed.rss2(), keys: postKeys(rows) };
  }

  async function atom(tenantId: string): Promise<PublicBody> {
    const { site, rows, updated } = await latest(tenantId);
    const feed = feedOf(site, updated);
    for (const p of rows) feed.addItem(itemOf(p, site, true));
    return { contentType: feedContentTypes.atom, body: feed.atom1(), keys: postKeys(rows) };
  }

  /**
   * JSON Feed 1.1: the library writes 1.0, which 1.1 extends; this adds what 1.1 has beyond it
   * (`authors`, `language`, `favicon`, item `image`) and keeps 1.0's `author` for older readers.
   */
  async function json(tenantId: string): Promise<PublicBody> {
    const { site, rows, updated } = await latest(tenantId);
    const feed = feedOf(site, updated);
    for (const p of rows) {
      const item = itemOf(p, site, false);
      feed.addItem({ ...item, title: p.title, description: excerptOf(p) || undefined, content: p.html ?? '' });
    }
    const doc = JSON.parse(feed.json1()) as Record<string, unknown> & { items: Record<string, unknown>[] };
    doc.version = 'https://jsonfeed.org/version/1.1';
    doc.language = site.lang;
    if (site.icon) doc.favicon = site.icon;
    doc.authors = [{ name: site.title, url: `${site.url}/` }];
    doc.items = doc.items.map((it, i) => {
      const p = rows[i]!;
      const authors = (p.authors ?? []).map((a) => ({ name: a.name, url: authorUrl(site, a.slug) }));
      return { ...it, ...(authors.length && { authors }), ...(p.featureImage && { image: p.featureImage }) };
    });
    return { contentType: feedContentTypes.json, body: JSON.stringify(doc), keys: postKeys(rows) };
  }

  /**
   * Every published post and page, every public tag and author with a published post, each with
   * its lastmod, up to the protocol's 50,000 URLs (the home page first, then posts newest first).
   * Tagged with the tenant's surrogate key only: every content change purges it, and a key per
   * URL would not fit a header.
   */
  async function sitemap(tenantId: string): Promise<PublicBody> {
    const entries = await read(tenantId, async (tx, site) => {
      let room = SITEMAP_MAX_URLS - 1;
      const postRows = await repo.sitemapPosts(tx, tenantId, 'post', room);
      room -= postRows.length;
      const pageRows = await repo.sitemapPosts(tx, tenantId, 'page', room);
      room -= pageRows.length;
      const tagRows = await repo.sitemapTags(tx, tenantId, room);
      room -= tagRows.length;
      const authorRows = await repo.sitemapAuthors(tx, tenantId, room);
      const siteChanged = (await repo.siteUpdatedAt(tx, tenantId)) ?? new Date(0);
      const home = newest([siteChanged, ...postRows.map((r) => r.lastmod)], siteChanged);
      return [
        { url: `${site.url}/`, lastmod: home },
        ...[...postRows, ...pageRows].map((r) => ({ url: postUrl(site, r.slug), lastmod: r.lastmod })),
        ...tagRows.map((r) => ({ url: tagUrl(site, r.slug), lastmod: r.lastmod })),
        ...authorRows.map((r) => ({ url: authorUrl(site, r.slug), lastmod: r.lastmod })),
      ];
    });
    const stream = new SitemapStream({ xmlns: { news: false, video: false, image: false, xhtml: false } });
    const xml = await streamToPromise(
      Readable.from(entries.map((e) => ({ url: e.url, lastmod: e.lastmod.toISOString() }))).pipe(stream),
    );
    return { contentType: feedContentTypes.sitemap, body: xml.toString('utf8'), keys: [] };
  }

  async function robots(tenantId: string): Promise<PublicBody> {
    const site = await read(tenantId, async (_tx, s) => s);
    const body = ['User-agent: *', 'Allow: /', '', `Sitemap: ${site.url}/sitemap.xml`, ''].join('\n');
    return { contentType: feedContentTypes.text, body, keys: [] };
  }

  /** llms.txt (llmstxt.org): the title, the description, then the newest posts and the pages as links. */
  async function llms(tenantId: string): Promise<PublicBody> {
    const { site, postRows, pageRows } = await read(tenantId, async (tx, site) => {
      const q = { limit: LLMS_ITEMS, offset: 0, withTags: false, withAuthors: false };
      const postRows = (await browsePosts(tx, tenantId, 'post', { ...q, order: newestFirst })).rows;
      const pageRows = (await browsePosts(tx, tenantId, 'page', { ...q, order: byTitle })).rows;
      return { site, postRows, pageRows };
    });
    const line = (p: PublicPostRow) => {
      const excerpt = oneLine(excerptOf(p));
      return `- [${linkText(p.title)}](${postUrl(site, p.slug)})${excerpt ? `: ${excerpt}` : ''}`;
    };
    const description = site.description && oneLine(site.description);
    const body = [
      `# ${oneLine(site.title)}`,
      '',
      ...(description ? [`> ${description}`, ''] : []),
      '## Posts',
      '',
      ...postRows.map(line),
      ...(postRows.length ? [''] : []),
      '## Pages',
      '',
      ...pageRows.map(line),
      ...(pageRows.length ? [''] : []),
    ].join('\n');
    return {
      contentType: feedContentTypes.text,
      body,
      keys: [...postRows, ...pageRows].map((p) => surrogateKey.post(p.id)),
    };
  }

  return { rss, atom, json, sitemap, robots, llms };
}

export type FeedsService = ReturnType<typeof createFeedsService>;
export type FeedKind = keyof FeedsService;
