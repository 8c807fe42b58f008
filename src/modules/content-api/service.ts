import { type SQL, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../platform/db/index.js';
import { memberships, type PostType, posts, tags } from '../../platform/db/schema.js';
import { surrogateKey } from '../delivery/events.js';
import { authorFields, authorOrder, postFields, postOrder, tagFields, tagOrder } from './fields.js';
import { GhostError, ghostAuthor, ghostPost, ghostTag, pagination, pickFields, type Site } from './ghost.js';
import { compileNql, NqlError, type NqlFields } from './nql.js';
import * as repo from './repository.js';

/** Ghost's browse and read parameters, as strings off the query (unknown ones are ignored, as by Ghost). */
export interface ContentParams {
  limit?: string;
  page?: string;
  order?: string;
  include?: string;
  fields?: string;
  formats?: string;
  filter?: string;
}

export type Resource = 'posts' | 'pages' | 'tags' | 'authors';
export type ReadBy = { id: string } | { slug: string };
export interface ContentResult {
  body: Record<string, unknown>;
  keys: string[];
}

const DEFAULT_LIMIT = 15;
const MAX_LIMIT = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const bad = (message: string, context: string | null = null, property: string | null = null) =>
  new GhostError('BadRequestError', message, context, property);

const list = (s: string | undefined) =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function parseLimit(s: string | undefined): number {
  if (s === undefined || s === '') return DEFAULT_LIMIT;
  if (s === 'all') return MAX_LIMIT; // Ghost's "all", bounded
  if (!/^\d{1,6}$/.test(s) || Number(s) < 1)
    throw bad('Validation error, cannot list.', 'limit must be a positive integer or "all"', 'limit');
  return Math.min(Number(s), MAX_LIMIT);
}

function parsePage(s: string | undefined): number {
  if (s === undefined || s === '') return 1;
  if (!/^\d{1,6}$/.test(s) || Number(s) < 1)
    throw bad('Validation error, cannot list.', 'page must be a positive integer', 'page');
  return Number(s);
}

/** `order=published_at desc, title asc` against an allow-list; an id tie-break keeps pages stable. */
function parseOrder(s: string | undefined, allowed: Record<string, SQL>, fallback: string, tieBreak: SQL): SQL[] {
  const parts = list(s || fallback);
  if (parts.length > 3) throw bad('Validation error, cannot list.', 'order takes at most three fields', 'order');
  const out = parts.map((part) => {
    const [field, dir = 'asc', ...rest] = part.split(/\s+/);
    const col = field !== undefined && Object.hasOwn(allowed, field) ? allowed[field] : undefined;
    const d = dir.toLowerCase();
    if (!col || rest.length || (d !== 'asc' && d !== 'desc')) {
      throw bad(
        'Validation error, cannot list.',
        `order: "${part}" is not a field and direction this resource sorts by`,
        'order',
      );
    }
    // Spelled as the indexes are built (DESC NULLS LAST), so the index serves the order.
    return d === 'desc' ? sql`${col} desc nulls last` : sql`${col} asc nulls last`;
  });
  return [...out, tieBreak];
}

function parseFilter(s: string | undefined, fields: NqlFields): SQL | undefined {
  if (s === undefined || s === '') return undefined;
  try {
    return compileNql(s, fields);
  } catch (err) {
    if (err instanceof NqlError) throw bad('Error parsing filter', err.message, 'filter');
    throw err;
  }
}

function includes(s: string | undefined, allowed: string[]) {
  const wanted = list(s);
  const unknown = wanted.filter((w) => !allowed.includes(w));
  if (unknown.length) {
    throw bad(
      'Validation error, cannot list.',
      `include: ${unknown.join(', ')} (allowed: ${allowed.join(', ')})`,
      'include',
    );
  }
  return new Set(wanted);
}

function formatsOf(s: string | undefined) {
  const f = list(s);
  if (!f.length) return { html: true, plaintext: false };
  return { html: f.includes('html'), plaintext: f.includes('plaintext') };
}

export interface ContentApiDeps {
  db: Database;
  /** Where the API is reached (for path-prefixed sites): no trailing slash. */
  publicUrl: string;
  /** With a base host, each tenant's site is its subdomain of it. */
  baseHost?: string;
}

/**
 * The public read side of a tenant: Ghost's Content API resources. Every read runs under the
 * tenant role with no caller (row-level security on), and sees only what is published.
 */
export function createContentApiService(deps: ContentApiDeps) {
  const { db } = deps;
  const proto = new URL(deps.publicUrl).protocol;

  const siteUrl = (slug: string) =>
    deps.baseHost ? `${proto}//${slug}.${deps.baseHost}` : `${deps.publicUrl}/s/${slug}`;

  type SiteRow = NonNullable<Awaited<ReturnType<typeof repo.readSite>>>;
  /** A read in the tenant's scope, with its site (row and public address) read once up front. */
  const read = <T>(tenantId: string, fn: (tx: Executor, site: Site & SiteRow) => Promise<T>) =>
    db.withTenant({ tenantId, userId: null }, async (tx) => {
      const s = await repo.readSite(tx, tenantId);
      if (!s) throw new GhostError('NotFoundError', 'Site not found.');
      return fn(tx, { ...s, url: siteUrl(s.slug) });
    });

  function postKeys(rows: repo.PublicPostRow[]) {
    return rows.flatMap((p) => [
      surrogateKey.post(p.id),
      ...(p.tags ?? []).map((t) => surrogateKey.tag(t.id)),
      ...(p.authors ?? []).map((a) => surrogateKey.author(a.id)),
    ]);
  }

  function postResult(rows: repo.PublicPostRow[], site: Site, q: ContentParams, inc: Set<string>) {
    const formats = formatsOf(q.formats);
    const fields = list(q.fields);
    const keep = [
      ...(inc.has('tags') ? ['tags', 'primary_tag'] : []),
      ...(inc.has('authors') ? ['authors', 'primary_author'] : []),
    ];
    return rows.map((r) => pickFields(ghostPost(r, site, formats), fields, keep));
  }

  async function browsePosts(type: PostType, tenantId: string, q: ContentParams): Promise<ContentResult> {
    const limit = parseLimit(q.limit);
    const page = parsePage(q.page);
    const inc = includes(q.include, ['tags', 'authors']);
    const order = parseOrder(
      q.order,
      postOrder,
      type === 'post' ? 'published_at desc' : 'title asc',
      sql`${posts.id} desc nulls last`,
    );
    const where = parseFilter(q.filter, postFields);
    return read(tenantId, async (tx, site) => {
      const { rows, total } = await repo.browsePosts(tx, tenantId, type, {
        where,
        order,
        limit,
        offset: (page - 1) * limit,
        withTags: inc.has('tags'),
        withAuthors: inc.has('authors'),
      });
      return {
        body: {
          [`${type}s`]: postResult(rows, site, q, inc),
          meta: { pagination: pagination(page, limit, total) },
        },
        keys: postKeys(rows),
      };
    });
  }

  async function readPost(type: PostType, tenantId: string, by: ReadBy, q: ContentParams): Promise<ContentResult> {
    const inc = includes(q.include, ['tags', 'authors']);
    if ('id' in by && !UUID.test(by.id))
      throw new GhostError('NotFoundError', `${type === 'post' ? 'Post' : 'Page'} not found.`);
    return read(tenantId, async (tx, site) => {
      const row = await repo.readPost(tx, tenantId, type, by, {
        withTags: inc.has('tags'),
        withAuthors: inc.has('authors'),
      });
      if (!row) throw new GhostError('NotFoundError', `${type === 'post' ? 'Post' : 'Page'} not found.`);
      return { body: { [`${type}s`]: postResult([row], site, q, inc) }, keys: postKeys([row]) };
    });
  }

  /** Tags and authors: browse and read the same way, with an optional `count.posts`. */
  function simpleResource<Row extends { id: string }>(r: {
    label: string;
    plural: 'tags' | 'authors';
    fields: NqlFields;
    order: Record<string, SQL>;
    defaultOrder: string;
    tieBreak: SQL;
    browse(
      tx: Executor,
      tenantId: string,
      q: Omit<repo.BrowseQuery, 'withTags' | 'withAuthors'> & { withCount: boolean },
    ): Promise<{ rows: Row[]; total: number }>;
    read(tx: Executor, tenantId: string, by: ReadBy, withCount: boolean): Promise<Row | undefined>;
    serialize(row: Row, site: Site): Record<string, unknown>;
    key(id: string): string;
  }) {
    const shape = (row: Row, site: Site, q: ContentParams, withCount: boolean) =>
      pickFields(r.serialize(row, site), list(q.fields), withCount ? ['count'] : []);
    const notFound = () => new GhostError('NotFoundError', `${r.label} not found.`);
    return {
      async browse(tenantId: string, q: ContentParams): Promise<ContentResult> {
        const limit = parseLimit(q.limit);
        const page = parsePage(q.page);
        const withCount = includes(q.include, ['count.posts']).has('count.posts');
        const order = parseOrder(q.order, r.order, r.defaultOrder, r.tieBreak);
        const where = parseFilter(q.filter, r.fields);
        return read(tenantId, async (tx, site) => {
          const { rows, total } = await r.browse(tx, tenantId, {
            where,
            order,
            limit,
            offset: (page - 1) * limit,
            withCount,
          });
          return {
            body: {
              [r.plural]: rows.map((row) => shape(row, site, q, withCount)),
              meta: { pagination: pagination(page, limit, total) },
            },
            keys: rows.map((row) => r.key(row.id)),
          };
        });
      },
      async read(tenantId: string, by: ReadBy, q: ContentParams): Promise<ContentResult> {
        const withCount = includes(q.include, ['count.posts']).has('count.posts');
        if ('id' in by && !UUID.test(by.id)) throw notFound();
        return read(tenantId, async (tx, site) => {
          const row = await r.read(tx, tenantId, by, withCount);
          if (!row) throw notFound();
          return { body: { [r.plural]: [shape(row, site, q, withCount)] }, keys: [r.key(row.id)] };
        });
      },
    };
  }

  const tagResource = simpleResource({
    label: 'Tag',
    plural: 'tags',
    fields: tagFields,
    order: { ...tagOrder, 'count.posts': repo.tagPostCount },
    defaultOrder: 'name asc',
    tieBreak: sql`${tags.id} asc`,
    browse: repo.browseTags,
    read: repo.readTag,
    serialize: ghostTag,
    key: surrogateKey.tag,
  });
  const authorResource = simpleResource({
    label: 'Author',
    plural: 'authors',
    fields: authorFields,
    order: { ...authorOrder, 'count.posts': repo.authorPostCount },
    defaultOrder: 'name asc',
    tieBreak: sql`${memberships.userId} asc`,
    browse: repo.browseAuthors,
    read: repo.readAuthor,
    serialize: ghostAuthor,
    key: surrogateKey.author,
  });

  async function settings(tenantId: string): Promise<ContentResult> {
    return read(tenantId, async (_tx, s) => {
      const st = s.settings;
      return {
        body: {
          settings: {
            title: st.title ?? s.name,
            description: st.description ?? null,
            logo: st.logo ?? null,
            icon: st.icon ?? null,
            accent_color: st.accentColor ?? null,
            cover_image: st.coverImage ?? null,
            facebook: null,
            twitter: null,
            lang: st.lang ?? 'en',
            locale: st.lang ?? 'en',
            timezone: st.timezone ?? 'Etc/UTC',
            codeinjection_head: null,
            codeinjection_foot: null,
            navigation: [],
            secondary_navigation: [],
            meta_title: null,
            meta_description: null,
            og_image: null,
            og_title: null,
            og_description: null,
            twitter_image: null,
            twitter_title: null,
            twitter_description: null,
            members_support_address: null,
            url: `${s.url}/`,
          },
          meta: {},
        },
        keys: [],
      };
    });
  }

  return {
    siteUrl,
    browse(resource: Resource, tenantId: string, q: ContentParams) {
      if (resource === 'posts') return browsePosts('post', tenantId, q);
      if (resource === 'pages') return browsePosts('page', tenantId, q);
      if (resource === 'tags') return tagResource.browse(tenantId, q);
      return authorResource.browse(tenantId, q);
    },
    read(resource: Resource, tenantId: string, by: ReadBy, q: ContentParams) {
      if (resource === 'posts') return readPost('post', tenantId, by, q);
      if (resource === 'pages') return readPost('page', tenantId, by, q);
      if (resource === 'tags') return tagResource.read(tenantId, by, q);
      return authorResource.read(tenantId, by, q);
    },
    settings,
  };
}

export type ContentApiService = ReturnType<typeof createContentApiService>;
