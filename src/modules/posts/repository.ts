import { and, eq, getTableColumns, isNull, like, lt, lte, or, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { type PostStatus, posts, postTags, tags } from '../../platform/db/schema.js';

export type PostRow = typeof posts.$inferSelect;
export type PostTagRef = { id: string; name: string; slug: string };

/**
 * A post's tags, in order, as one JSON value in the post's own row: reads stay one statement
 * (the tags are the tags module's; this is its read model, kept here for the round trip).
 */
const tagsOfPost = sql<PostTagRef[]>`coalesce((
  select json_agg(json_build_object('id', t.id, 'name', t.name, 'slug', t.slug) order by pt.sort_order)
    from ${postTags} pt join ${tags} t on t.tenant_id = pt.tenant_id and t.id = pt.tag_id
   where pt.tenant_id = posts.tenant_id and pt.post_id = posts.id), '[]'::json)`;
const withTags = { ...getTableColumns(posts), tags: tagsOfPost };

export interface ListFilter {
  limit: number;
  status?: PostStatus;
  authorId?: string;
  sort: 'created_at' | 'published_at';
  /** Keyset position: the sort value and id of the last row already returned. */
  after?: { value: Date | null; id: string };
}

const byId = (tenantId: string, id: string) => and(eq(posts.tenantId, tenantId), eq(posts.id, id));

export async function insertPost(
  tx: Executor,
  v: {
    tenantId: string;
    authorId: string;
    title: string;
    slug: string;
    body: string;
    excerpt: string | null;
    html: string;
    plaintext: string;
    readingTime: number;
  },
): Promise<PostRow> {
  const [row] = await tx.insert(posts).values(v).returning();
  return row!;
}

export const findTags = async (tx: Executor, tenantId: string, id: string): Promise<PostTagRef[]> =>
  (await tx.select({ tags: tagsOfPost }).from(posts).where(byId(tenantId, id)).limit(1))[0]?.tags ?? [];

export const findById = async (tx: Executor, tenantId: string, id: string) =>
  (await tx.select(withTags).from(posts).where(byId(tenantId, id)).limit(1))[0];

/** findById that also locks the row to the end of the transaction: writers of one post take turns. */
export const findByIdForUpdate = async (tx: Executor, tenantId: string, id: string) =>
  (await tx.select().from(posts).where(byId(tenantId, id)).limit(1).for('update'))[0];

export const findBySlug = async (tx: Executor, tenantId: string, slug: string) =>
  (
    await tx
      .select(withTags)
      .from(posts)
      .where(and(eq(posts.tenantId, tenantId), eq(posts.slug, slug)))
      .limit(1)
  )[0];

/** Slugs in use that start with `base`, to pick the next free `base-N`. */
export const slugsLike = async (tx: Executor, tenantId: string, base: string) =>
  (
    await tx
      .select({ slug: posts.slug })
      .from(posts)
      .where(and(eq(posts.tenantId, tenantId), like(posts.slug, `${base.replace(/[%_\\]/g, '\\$&')}%`)))
  ).map((r) => r.slug);

/**
 * Newest first, keyset-paginated; fetches one extra row to know whether a next page exists.
 * ORDER BY spells `desc nulls last` to match the indexes (drizzle-kit made them DESC NULLS LAST;
 * plain `desc` means NULLS FIRST, which no index can serve, so every page sorted the tenant).
 */
export function listPosts(tx: Executor, tenantId: string, f: ListFilter) {
  const where: (SQL | undefined)[] = [eq(posts.tenantId, tenantId)];
  if (f.status) where.push(eq(posts.status, f.status));
  if (f.authorId) where.push(eq(posts.authorId, f.authorId));
  if (f.sort === 'created_at') {
    if (f.after)
      where.push(sql`(${posts.createdAt}, ${posts.id}) < (${f.after.value}::timestamptz, ${f.after.id}::uuid)`);
    return tx
      .select(withTags)
      .from(posts)
      .where(and(...where))
      .orderBy(sql`${posts.createdAt} desc nulls last`, sql`${posts.id} desc nulls last`)
      .limit(f.limit + 1);
  }
  // published_at is null for drafts: they sort last, by id.
  if (f.after) {
    where.push(
      f.after.value === null
        ? and(isNull(posts.publishedAt), lt(posts.id, f.after.id))
        : or(
            sql`(${posts.publishedAt}, ${posts.id}) < (${f.after.value}::timestamptz, ${f.after.id}::uuid)`,
            isNull(posts.publishedAt),
          ),
    );
  }
  return tx
    .select(withTags)
    .from(posts)
    .where(and(...where))
    .orderBy(sql`${posts.publishedAt} desc nulls last`, sql`${posts.id} desc nulls last`)
    .limit(f.limit + 1);
}

/**
 * Applies `patch` only if the post is still at `expectedVersion` (optimistic concurrency) and,
 * when `authorId` is given, still belongs to that author. One statement: no lost update.
 */
export async function updateIfVersion(
  tx: Executor,
  tenantId: string,
  id: string,
  expectedVersion: number,
  patch: Partial<
    Pick<PostRow, 'title' | 'slug' | 'body' | 'excerpt' | 'status' | 'html' | 'plaintext' | 'readingTime'>
  > & { publishedAt?: Date | SQL | null },
): Promise<PostRow | undefined> {
  const [row] = await tx
    .update(posts)
    .set({ ...patch, version: sql`${posts.version} + 1`, updatedAt: sql`now()` })
    .where(and(byId(tenantId, id), eq(posts.version, expectedVersion)))
    .returning();
  return row;
}

export async function deleteIfVersion(tx: Executor, tenantId: string, id: string, expectedVersion: number) {
  const rows = await tx
    .delete(posts)
    .where(and(byId(tenantId, id), eq(posts.version, expectedVersion)))
    .returning({ id: posts.id });
  return rows.length > 0;
}

// --- system role (the job platform): explicit tenant filters, no caller to scope to ---

export const findScheduleState = async (db: Executor, tenantId: string, id: string) =>
  (
    await db
      .select({ status: posts.status, publishedAt: posts.publishedAt })
      .from(posts)
      .where(byId(tenantId, id))
      .limit(1)
  )[0];

/** Publishes the post if it is still scheduled for exactly `publishAt` (not rescheduled, not unscheduled). */
export async function publishIfScheduledFor(db: Executor, tenantId: string, id: string, publishAt: Date) {
  const rows = await db
    .update(posts)
    .set({ status: 'published', version: sql`${posts.version} + 1`, updatedAt: sql`now()` })
    .where(and(byId(tenantId, id), eq(posts.status, 'scheduled'), eq(posts.publishedAt, publishAt)))
    .returning({ id: posts.id });
  return rows.length > 0;
}

/** Every scheduled post whose time has come, in every tenant (the sweep behind lost timers). */
export async function publishOverdue(db: Executor) {
  return db
    .update(posts)
    .set({ status: 'published', version: sql`${posts.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(posts.status, 'scheduled'), lte(posts.publishedAt, sql`now()`)))
    .returning({ tenantId: posts.tenantId, id: posts.id });
}

/** Posts whose body was never rendered (written before rendering existed), oldest first. */
export const unrendered = (db: Executor, limit: number) =>
  db
    .select({ tenantId: posts.tenantId, id: posts.id, body: posts.body })
    .from(posts)
    .where(and(eq(posts.html, ''), sql`${posts.body} <> ''`))
    .limit(limit);

/** Stores a rendering, unless the body changed meanwhile (its own save rendered it then). */
export async function storeRendering(
  db: Executor,
  p: { tenantId: string; id: string; body: string },
  r: { html: string; plaintext: string; readingTime: number },
) {
  await db
    .update(posts)
    .set(r)
    .where(and(byId(p.tenantId, p.id), eq(posts.body, p.body)));
}
