import { and, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { memberships, type PostType, postAuthors, posts, postTags, tags, tenants } from '../../platform/db/schema.js';
import { visible } from '../content-api/repository.js';

/**
 * The few reads the feeds need beyond the Content API's read model (../content-api/repository.ts):
 * lean rows for the sitemap (no bodies, up to 50,000 of them) with a lastmod for tags and
 * authors. Visibility is the read model's own rule (`visible`): published, and its time has come.
 * Run under the tenant role with no caller, as the read model does.
 */

export interface SitemapRow {
  id: string;
  slug: string;
  lastmod: Date;
}

/** Newest first, spelled as the indexes are built, as the Content API orders posts. */
const newestFirst = [sql`${posts.publishedAt} desc nulls last`, sql`${posts.id} desc`];

export async function sitemapPosts(tx: Executor, tenantId: string, type: PostType, limit: number) {
  if (limit <= 0) return [];
  return (await tx
    .select({ id: posts.id, slug: posts.slug, lastmod: posts.updatedAt })
    .from(posts)
    .where(visible(tenantId, type))
    .orderBy(...newestFirst)
    .limit(limit)) as SitemapRow[];
}

/** Public tags carrying at least one published post; lastmod is the newest change to the tag or its posts. */
export async function sitemapTags(tx: Executor, tenantId: string, limit: number) {
  if (limit <= 0) return [];
  const lastmod = sql<Date>`greatest(${tags.updatedAt}, max(${posts.updatedAt}))`.mapWith(posts.updatedAt);
  return (await tx
    .select({ id: tags.id, slug: tags.slug, lastmod })
    .from(tags)
    .innerJoin(postTags, and(eq(postTags.tenantId, tags.tenantId), eq(postTags.tagId, tags.id)))
    .innerJoin(posts, and(eq(posts.tenantId, postTags.tenantId), eq(posts.id, postTags.postId)))
    .where(and(eq(tags.tenantId, tenantId), eq(tags.visibility, 'public'), visible(tenantId, 'post')))
    .groupBy(tags.id, tags.slug, tags.updatedAt)
    .orderBy(sql`${lastmod} desc`, tags.id)
    .limit(limit)) as SitemapRow[];
}

/** Members with at least one published post; lastmod is the newest change to the profile or those posts. */
export async function sitemapAuthors(tx: Executor, tenantId: string, limit: number) {
  if (limit <= 0) return [];
  const lastmod = sql<Date>`greatest(${memberships.updatedAt}, max(${posts.updatedAt}))`.mapWith(posts.updatedAt);
  return (await tx
    .select({ id: memberships.userId, slug: memberships.slug, lastmod })
    .from(memberships)
    .innerJoin(
      postAuthors,
      and(eq(postAuthors.tenantId, memberships.tenantId), eq(postAuthors.userId, memberships.userId)),
    )
    .innerJoin(posts, and(eq(posts.tenantId, postAuthors.tenantId), eq(posts.id, postAuthors.postId)))
    .where(and(eq(memberships.tenantId, tenantId), visible(tenantId, 'post')))
    .groupBy(memberships.userId, memberships.slug, memberships.updatedAt)
    .orderBy(sql`${lastmod} desc`, memberships.userId)
    .limit(limit)) as SitemapRow[];
}

/** When the publication itself (name, settings) last changed: a feed's date when it has no posts. */
export async function siteUpdatedAt(tx: Executor, tenantId: string): Promise<Date | undefined> {
  const [row] = await tx
    .select({ updatedAt: tenants.updatedAt })
    .from(tenants)
    .where(eq(tenants.id, tenantId))
    .limit(1);
  return row?.updatedAt;
}
