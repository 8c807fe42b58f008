import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { postTags, type TagVisibility, tags } from '../../platform/db/schema.js';

// Tenant executor: row-level security applies; queries still scope by tenant.

const columns = {
  id: tags.id,
  name: tags.name,
  slug: tags.slug,
  description: tags.description,
  visibility: tags.visibility,
  createdAt: tags.createdAt,
  updatedAt: tags.updatedAt,
};
export type TagRow = Pick<typeof tags.$inferSelect, keyof typeof columns> & { postCount?: number };

const postCount = sql<number>`(select count(*)::int from ${postTags} pt where pt.tenant_id = ${tags.tenantId} and pt.tag_id = ${tags.id})`;

export const listTags = (tx: Executor, tenantId: string) =>
  tx
    .select({ ...columns, postCount })
    .from(tags)
    .where(eq(tags.tenantId, tenantId))
    .orderBy(asc(tags.name), asc(tags.id));

export const findTag = async (tx: Executor, tenantId: string, id: string) =>
  (
    await tx
      .select({ ...columns, postCount })
      .from(tags)
      .where(and(eq(tags.tenantId, tenantId), eq(tags.id, id)))
      .limit(1)
  )[0];

export async function insertTag(
  tx: Executor,
  v: { tenantId: string; name: string; slug: string; description: string | null; visibility: TagVisibility },
) {
  const [row] = await tx.insert(tags).values(v).returning(columns);
  return row!;
}

export async function updateTag(
  tx: Executor,
  tenantId: string,
  id: string,
  patch: Partial<{ name: string; slug: string; description: string | null; visibility: TagVisibility }>,
) {
  const [row] = await tx
    .update(tags)
    .set({ ...patch, updatedAt: sql`now()` })
    .where(and(eq(tags.tenantId, tenantId), eq(tags.id, id)))
    .returning(columns);
  return row;
}

export async function deleteTag(tx: Executor, tenantId: string, id: string) {
  const rows = await tx
    .delete(tags)
    .where(and(eq(tags.tenantId, tenantId), eq(tags.id, id)))
    .returning({ id: tags.id, slug: tags.slug });
  return rows[0];
}

/** Creates the tags that do not exist yet (by slug) and returns every one's id, by slug. */
export async function ensureTags(
  tx: Executor,
  tenantId: string,
  wanted: { name: string; slug: string; visibility: TagVisibility }[],
): Promise<Map<string, string>> {
  if (wanted.length === 0) return new Map();
  await tx
    .insert(tags)
    .values(wanted.map((w) => ({ tenantId, ...w })))
    .onConflictDoNothing({ target: [tags.tenantId, tags.slug] });
  const rows = await tx
    .select({ id: tags.id, slug: tags.slug })
    .from(tags)
    .where(
      and(
        eq(tags.tenantId, tenantId),
        inArray(
          tags.slug,
          wanted.map((w) => w.slug),
        ),
      ),
    );
  return new Map(rows.map((r) => [r.slug, r.id]));
}

/** Replaces a post's tags with `tagIds`, in that order. */
export async function setPostTags(tx: Executor, tenantId: string, postId: string, tagIds: string[]) {
  await tx.delete(postTags).where(and(eq(postTags.tenantId, tenantId), eq(postTags.postId, postId)));
  if (tagIds.length === 0) return;
  await tx.insert(postTags).values(tagIds.map((tagId, i) => ({ tenantId, postId, tagId, sortOrder: i })));
}
