import { and, desc, eq, getTableColumns, inArray, isNull, like, lt, lte, or, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import {
  memberships,
  type PostStatus,
  type PostType,
  postAuthors,
  postRevisions,
  posts,
  postTags,
  tags,
  users,
} from '../../platform/db/schema.js';

// Every column but the search document: it is the search module's, and large.
const { searchVector: _searchVector, ...postColumns } = getTableColumns(posts);
export type PostRow = Omit<typeof posts.$inferSelect, 'searchVector'>;
export type PostTagRef = { id: string; name: string; slug: string };
export type PostAuthorRef = { id: string; name: string; slug: string; profileImage: string | null };

/**
 * A post's tags and authors, in order, each as one JSON value in the post's own row: reads stay
 * one statement (tags and profiles belong to their modules; this is their read model here).
 */
const tagsOfPost = sql<PostTagRef[]>`coalesce((
  select json_agg(json_build_object('id', t.id, 'name', t.name, 'slug', t.slug) order by pt.sort_order)
    from ${postTags} pt join ${tags} t on t.tenant_id = pt.tenant_id and t.id = pt.tag_id
   where pt.tenant_id = posts.tenant_id and pt.post_id = posts.id), '[]'::json)`;
const authorsOfPost = sql<PostAuthorRef[]>`coalesce((
  select json_agg(json_build_object('id', u.id, 'name', u.name, 'slug', m.slug, 'profileImage', m.profile_image)
                  order by pa.sort_order)
    from ${postAuthors} pa
    join ${users} u on u.id = pa.user_id
    left join ${memberships} m on m.tenant_id = pa.tenant_id and m.user_id = pa.user_id
   where pa.tenant_id = posts.tenant_id and pa.post_id = posts.id), '[]'::json)`;
const withRelations = { ...postColumns, tags: tagsOfPost, authors: authorsOfPost };
export type PostWithRelations = PostRow & { tags: PostTagRef[]; authors: PostAuthorRef[] };

export interface ListFilter {
  type: PostType;
  limit: number;
  status?: PostStatus;
  authorId?: string;
  sort: 'created_at' | 'published_at';
  /** Keyset position: the sort value and id of the last row already returned. */
  after?: { value: Date | null; id: string };
}

/** What staff edit (the API's names; `excerpt` is the custom excerpt). */
export const editableFields = [
  'title',
  'slug',
  'body',
  'excerpt',
  'featured',
  'featureImage',
  'featureImageAlt',
  'featureImageCaption',
  'metaTitle',
  'metaDescription',
  'canonicalUrl',
  'ogImage',
  'ogTitle',
  'ogDescription',
  'twitterImage',
  'twitterTitle',
  'twitterDescription',
] as const;
export type EditableFields = Pick<PostRow, (typeof editableFields)[number]>;
type Rendering = Pick<PostRow, 'html' | 'plaintext' | 'readingTime'>;

const byId = (tenantId: string, id: string) => and(eq(posts.tenantId, tenantId), eq(posts.id, id));
const ofType = (tenantId: string, type: PostType) => and(eq(posts.tenantId, tenantId), eq(posts.type, type));

export async function insertPost(
  tx: Executor,
  v: Partial<EditableFields> &
    Pick<EditableFields, 'title' | 'slug' | 'body'> &
    Rendering & { tenantId: string; type: PostType; authorId: string },
): Promise<PostRow> {
  const [row] = await tx.insert(posts).values(v).returning(postColumns);
  return row!;
}

export const findRelations = async (tx: Executor, tenantId: string, id: string) =>
  (await tx.select({ tags: tagsOfPost, authors: authorsOfPost }).from(posts).where(byId(tenantId, id)).limit(1))[0] ?? {
    tags: [],
    authors: [],
  };

export const findById = async (
  tx: Executor,
  tenantId: string,
  type: PostType,
  id: string,
): Promise<PostWithRelations | undefined> =>
  (
    await tx
      .select(withRelations)
      .from(posts)
      .where(and(ofType(tenantId, type), eq(posts.id, id)))
      .limit(1)
  )[0];

/** findById that also locks the row to the end of the transaction: writers of one post take turns. */
export const findByIdForUpdate = async (tx: Executor, tenantId: string, type: PostType, id: string) =>
  (
    await tx
      .select(postColumns)
      .from(posts)
      .where(and(ofType(tenantId, type), eq(posts.id, id)))
      .limit(1)
      .for('update')
  )[0];

export const findBySlug = async (
  tx: Executor,
  tenantId: string,
  type: PostType,
  slug: string,
): Promise<PostWithRelations | undefined> =>
  (
    await tx
      .select(withRelations)
      .from(posts)
      .where(and(ofType(tenantId, type), eq(posts.slug, slug)))
      .limit(1)
  )[0];

/** Slugs in use (by posts and pages: one URL space) that start with `base`, to pick the next free `base-N`. */
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
export function listPosts(tx: Executor, tenantId: string, f: ListFilter): Promise<PostWithRelations[]> {
  const where: (SQL | undefined)[] = [ofType(tenantId, f.type)];
  if (f.status) where.push(eq(posts.status, f.status));
  if (f.authorId) where.push(eq(posts.authorId, f.authorId));
  if (f.sort === 'created_at') {
    if (f.after)
      where.push(sql`(${posts.createdAt}, ${posts.id}) < (${f.after.value}::timestamptz, ${f.after.id}::uuid)`);
    return tx
      .select(withRelations)
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
    .select(withRelations)
    .from(posts)
    .where(and(...where))
    .orderBy(sql`${posts.publishedAt} desc nulls last`, sql`${posts.id} desc nulls last`)
    .limit(f.limit + 1);
}

/**
 * Applies `patch` only if the post is still at `expectedVersion` (optimistic concurrency).
 * One statement: no lost update.
 */
export async function updateIfVersion(
  tx: Executor,
  tenantId: string,
  id: string,
  expectedVersion: number,
  patch: Partial<EditableFields & Rendering & Pick<PostRow, 'status' | 'authorId'>> & {
    publishedAt?: Date | SQL | null;
  },
): Promise<PostRow | undefined> {
  const [row] = await tx
    .update(posts)
    .set({ ...patch, version: sql`${posts.version} + 1`, updatedAt: sql`now()` })
    .where(and(byId(tenantId, id), eq(posts.version, expectedVersion)))
    .returning(postColumns);
  return row;
}

// --- authors ---

/** Of `userIds`, those who are members of the tenant. */
export const membersAmong = async (tx: Executor, tenantId: string, userIds: string[]) =>
  new Set(
    (
      await tx
        .select({ id: memberships.userId })
        .from(memberships)
        .where(and(eq(memberships.tenantId, tenantId), inArray(memberships.userId, userIds)))
    ).map((r) => r.id),
  );

export async function setPostAuthors(tx: Executor, tenantId: string, postId: string, userIds: string[]) {
  await tx.delete(postAuthors).where(and(eq(postAuthors.tenantId, tenantId), eq(postAuthors.postId, postId)));
  await tx.insert(postAuthors).values(userIds.map((userId, sortOrder) => ({ tenantId, postId, userId, sortOrder })));
}

export const isAuthorOf = async (tx: Executor, tenantId: string, postId: string, userId: string) =>
  (
    await tx
      .select({ one: sql`1` })
      .from(postAuthors)
      .where(and(eq(postAuthors.tenantId, tenantId), eq(postAuthors.postId, postId), eq(postAuthors.userId, userId)))
      .limit(1)
  ).length > 0;

// --- revisions ---

export type RevisionRow = typeof postRevisions.$inferSelect;

export async function insertRevision(
  tx: Executor,
  v: Pick<RevisionRow, 'tenantId' | 'postId' | 'postVersion' | 'reason' | 'title' | 'snapshot' | 'createdBy'>,
  keep: number,
) {
  await tx.insert(postRevisions).values(v);
  // The oldest beyond the cap go. Ordered by the version each produced (versions only grow),
  // not by time: two writes in the same millisecond still keep the newest state.
  await tx.execute(sql`
    delete from ${postRevisions} where tenant_id = ${v.tenantId} and id in (
      select id from ${postRevisions} where tenant_id = ${v.tenantId} and post_id = ${v.postId}
       order by post_version desc, created_at desc, id desc offset ${keep})`);
}

export const listRevisions = (tx: Executor, tenantId: string, postId: string) =>
  tx
    .select({
      id: postRevisions.id,
      postVersion: postRevisions.postVersion,
      reason: postRevisions.reason,
      title: postRevisions.title,
      createdBy: postRevisions.createdBy,
      createdAt: postRevisions.createdAt,
    })
    .from(postRevisions)
    .where(and(eq(postRevisions.tenantId, tenantId), eq(postRevisions.postId, postId)))
    .orderBy(desc(postRevisions.postVersion), desc(postRevisions.createdAt), desc(postRevisions.id));

export const findRevision = async (tx: Executor, tenantId: string, postId: string, id: string) =>
  (
    await tx
      .select()
      .from(postRevisions)
      .where(and(eq(postRevisions.tenantId, tenantId), eq(postRevisions.postId, postId), eq(postRevisions.id, id)))
      .limit(1)
  )[0];

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
    .returning({ tenantId: posts.tenantId, id: posts.id, type: posts.type, slug: posts.slug });
  return rows[0];
}

/** Every scheduled post whose time has come, in every tenant (the sweep behind lost timers). */
export async function publishOverdue(db: Executor) {
  return db
    .update(posts)
    .set({ status: 'published', version: sql`${posts.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(posts.status, 'scheduled'), lte(posts.publishedAt, sql`now()`)))
    .returning({ tenantId: posts.tenantId, id: posts.id, type: posts.type, slug: posts.slug });
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
