import { and, asc, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { contentKeys } from '../../platform/db/schema.js';

const columns = {
  id: contentKeys.id,
  name: contentKeys.name,
  keyHint: contentKeys.keyHint,
  createdAt: contentKeys.createdAt,
  lastUsedAt: contentKeys.lastUsedAt,
};

// Tenant executor (RLS applies).

export const listKeys = (tx: Executor, tenantId: string) =>
  tx.select(columns).from(contentKeys).where(eq(contentKeys.tenantId, tenantId)).orderBy(asc(contentKeys.createdAt));

export async function insertKey(
  tx: Executor,
  v: { tenantId: string; name: string; keyHash: string; keyHint: string; createdBy: string },
) {
  const [row] = await tx.insert(contentKeys).values(v).returning(columns);
  return row!;
}

/** Deletes the key; returns its hash (to drop cached resolutions), or undefined if there was none. */
export async function deleteKey(tx: Executor, tenantId: string, id: string) {
  const [row] = await tx
    .delete(contentKeys)
    .where(and(eq(contentKeys.tenantId, tenantId), eq(contentKeys.id, id)))
    .returning({ keyHash: contentKeys.keyHash });
  return row?.keyHash;
}

// System executor: a key is resolved before any tenant is known.

export const findTenantByKeyHash = async (db: Executor, keyHash: string) =>
  (
    await db
      .select({ tenantId: contentKeys.tenantId, id: contentKeys.id })
      .from(contentKeys)
      .where(eq(contentKeys.keyHash, keyHash))
      .limit(1)
  )[0];

export const touchKey = (db: Executor, tenantId: string, id: string) =>
  db
    .update(contentKeys)
    .set({ lastUsedAt: sql`now()` })
    .where(and(eq(contentKeys.tenantId, tenantId), eq(contentKeys.id, id)));
