import { and, eq, inArray, lte, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import {
  memberships,
  type PostType,
  postAuthors,
  posts,
  postTags,
  type TenantSettings,
  tags,
  tenants,
  users,
} from '../../platform/db/schema.js';
import { publicProfileColumns } from '../authors/repository.js';

/**
 * The public read model: only published content whose publication time has come, only public
 * tags, only authors of such content. Runs under the tenant role (row-level security) with no
 * caller. Lists page with a deferred join: the page's ids come off the index alone, then only
 * those rows are read, so page 100 costs little more than page 1.
 */

export type PublicTag = {
  id: string;
  name: string;
  slug: string;
  description: string | null;
  visibility: string;
};
export type PublicAuthor = {
  id: string;
  name: string;
  slug: string;
  bio: string | null;
  profileImage: string | null;
  coverImage: string | null;
  website: string | null;
  location: string | null;
};

const publicTagsOfPost = sql<PublicTag[]>`coalesce((
  select json_agg(json_build_object('id', t.id, 'name', t.name, 'slug', t.slug, 'description', t.description,
                                    'visibility', t.visibility) order by pt.sort_order)
    from ${postTags} pt join ${tags} t on t.tenant_id = pt.tenant_id and t.id = pt.tag_id
   where pt.tenant_id = posts.tenant_id and pt.post_id = posts.id and t.visibility = 'public'), '[]'::json)`;
const authorsOfPost = sql<PublicAuthor[]>`coalesce((
  select json_agg(json_build_object('id', u.id, 'name', u.name, 'slug', m.slug, 'bio', m.bio,
                                    'profileImage', m.profile_image, 'coverImage', m.cover_image,
                                    'website', m.website, 'location', m.location) order by pa.sort_order)
    from ${postAuthors} pa
    join ${users} u on u.id = pa.user_id
    join ${memberships} m on m.tenant_id = pa.tenant_id and m.user_id = pa.user_id
   where pa.tenant_id = posts.tenant_id and pa.post_id = posts.id), '[]'::json)`;

const postColumns = {
  id: posts.id,
  type: posts.type,
  title: posts.title,
  slug: posts.slug,
  html: posts.html,
  plaintext: posts.plaintext,
  excerpt: posts.excerpt,
  readingTime: posts.readingTime,
  featured: posts.featured,
  featureImage: posts.featureImage,
  featureImageAlt: posts.featureImageAlt,
  featureImageCaption: posts.featureImageCaption,
  metaTitle: posts.metaTitle,
  metaDescription: posts.metaDescription,
  canonicalUrl: posts.canonicalUrl,
  ogImage: posts.ogImage,
  ogTitle: posts.ogTitle,
  ogDescription: posts.ogDescription,
  twitterImage: posts.twitterImage,
  twitterTitle: posts.twitterTitle,
  twitterDescription: posts.twitterDescription,
  publishedAt: posts.publishedAt,
  createdAt: posts.createdAt,
  updatedAt: posts.updatedAt,
};
export type PublicPostRow = {
  [K in keyof typeof postColumns]: (typeof postColumns)[K]['_']['notNull'] extends true
    ? (typeof postColumns)[K]['_']['data']
    : (typeof postColumns)[K]['_']['data'] | null;
} & { tags?: PublicTag[]; authors?: PublicAuthor[] };

/** Published, and its time has come (a post published "in the future" is not out yet). */
export const visible = (tenantId: string, type: PostType) =>
  and(
    eq(posts.tenantId, tenantId),
    eq(posts.type, type),
    eq(posts.status, 'published'),
    lte(posts.publishedAt, sql`now()`),
  );

export interface BrowseQuery {
  where?: SQL;
  order: SQL[];
  limit: number;
  offset: number;
  withTags: boolean;
  withAuthors: boolean;
}

const postSelection = (q: Pick<BrowseQuery, 'withTags' | 'withAuthors'>) => ({
  ...postColumns,
  ...(q.withTags && { tags: publicTagsOfPost }),
  ...(q.withAuthors && { authors: authorsOfPost }),
});

export async function browsePosts(tx: Executor, tenantId: string, type: PostType, q: BrowseQuery) {
  const where = and(visible(tenantId, type), q.where);
  const page = tx
    .select({ id: posts.id })
    .from(posts)
    .where(where)
    .orderBy(...q.order)
    .limit(q.limit)
    .offset(q.offset);
  const rows = (await tx
    .select(postSelection(q))
    .from(posts)
    .where(and(eq(posts.tenantId, tenantId), inArray(posts.id, page)))
    .orderBy(...q.order)) as PublicPostRow[];
  const [count] = await tx.select({ total: sql<number>`count(*)::int` }).from(posts).where(where);
  return { rows, total: count?.total ?? 0 };
}

export async function readPost(
  tx: Executor,
  tenantId: string,
  type: PostType,
  by: { id: string } | { slug: string },
  q: Pick<BrowseQuery, 'withTags' | 'withAuthors'>,
) {
  const match = 'id' in by ? eq(posts.id, by.id) : eq(posts.slug, by.slug);
  const [row] = await tx
    .select(postSelection(q))
    .from(posts)
    .where(and(visible(tenantId, type), match))
    .limit(1);
  return row as PublicPostRow | undefined;
}

// --- tags ---

/**
 * Published posts (not pages) carrying the tag: Ghost's count.posts. The outer row is named in
 * full: in a select list over one table drizzle leaves columns unqualified, and inside this
 * subquery `tenant_id` would be ambiguous.
 */
export const tagPostCount = sql<number>`(select count(*)::int from ${postTags} pt
  join ${posts} p on p.tenant_id = pt.tenant_id and p.id = pt.post_id
  where pt.tenant_id = "tags"."tenant_id" and pt.tag_id = "tags"."id"
    and p.type = 'post' and p.status = 'published' and p.published_at <= now())`;

const tagColumns = {
  id: tags.id,
  name: tags.name,
  slug: tags.slug,
  description: tags.description,
  visibility: tags.visibility,
  createdAt: tags.createdAt,
  updatedAt: tags.updatedAt,
};
export type PublicTagRow = {
  id: string;
  name: string;
  slug: string;
  description: string | null;
  visibility: string;
  createdAt: Date;
  updatedAt: Date;
  postCount?: number;
};

const publicTags = (tenantId: string) => and(eq(tags.tenantId, tenantId), eq(tags.visibility, 'public'));

export async function browseTags(
  tx: Executor,
  tenantId: string,
  q: Omit<BrowseQuery, 'withTags' | 'withAuthors'> & { withCount: boolean },
) {
  const where = and(publicTags(tenantId), q.where);
  const rows = (await tx
    .select({ ...tagColumns, ...(q.withCount && { postCount: tagPostCount }) })
    .from(tags)
    .where(where)
    .orderBy(...q.order)
    .limit(q.limit)
    .offset(q.offset)) as PublicTagRow[];
  const [count] = await tx.select({ total: sql<number>`count(*)::int` }).from(tags).where(where);
  return { rows, total: count?.total ?? 0 };
}

export async function readTag(
  tx: Executor,
  tenantId: string,
  by: { id: string } | { slug: string },
  withCount: boolean,
) {
  const match = 'id' in by ? eq(tags.id, by.id) : eq(tags.slug, by.slug);
  const [row] = await tx
    .select({ ...tagColumns, ...(withCount && { postCount: tagPostCount }) })
    .from(tags)
    .where(and(publicTags(tenantId), match))
    .limit(1);
  return row as PublicTagRow | undefined;
}

// --- authors: members with at least one published post or page ---

const authoredCount = (onlyPosts: boolean) => sql<number>`(select count(*)::int from ${postAuthors} pa
  join ${posts} p on p.tenant_id = pa.tenant_id and p.id = pa.post_id
  where pa.tenant_id = "memberships"."tenant_id" and pa.user_id = "memberships"."user_id"
    and p.status = 'published' and p.published_at <= now() ${onlyPosts ? sql`and p.type = 'post'` : sql``})`;
export const authorPostCount = authoredCount(true);

const authorColumns = publicProfileColumns;
export type PublicAuthorRow = PublicAuthor & { postCount?: number };

const publicAuthors = (tenantId: string) =>
  and(
    eq(memberships.tenantId, tenantId),
    sql`exists (select 1 from ${postAuthors} pa
    join ${posts} p on p.tenant_id = pa.tenant_id and p.id = pa.post_id
    where pa.tenant_id = ${memberships.tenantId} and pa.user_id = ${memberships.userId}
      and p.status = 'published' and p.published_at <= now())`,
  );

export async function browseAuthors(
  tx: Executor,
  tenantId: string,
  q: Omit<BrowseQuery, 'withTags' | 'withAuthors'> & { withCount: boolean },
) {
  const where = and(publicAuthors(tenantId), q.where);
  const rows = (await tx
    .select({ ...authorColumns, ...(q.withCount && { postCount: authorPostCount }) })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(where)
    .orderBy(...q.order)
    .limit(q.limit)
    .offset(q.offset)) as PublicAuthorRow[];
  const [count] = await tx
    .select({ total: sql<number>`count(*)::int` })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(where);
  return { rows, total: count?.total ?? 0 };
}

export async function readAuthor(
  tx: Executor,
  tenantId: string,
  by: { id: string } | { slug: string },
  withCount: boolean,
) {
  const match = 'id' in by ? eq(memberships.userId, by.id) : eq(memberships.slug, by.slug);
  const [row] = await tx
    .select({ ...authorColumns, ...(withCount && { postCount: authorPostCount }) })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(publicAuthors(tenantId), match))
    .limit(1);
  return row as PublicAuthorRow | undefined;
}

// --- the publication ---

export async function readSite(tx: Executor, tenantId: string) {
  const [row] = await tx
    .select({ id: tenants.id, name: tenants.name, slug: tenants.slug, settings: tenants.settings })
    .from(tenants)
    .where(eq(tenants.id, tenantId))
    .limit(1);
  return row as { id: string; name: string; slug: string; settings: TenantSettings } | undefined;
}
