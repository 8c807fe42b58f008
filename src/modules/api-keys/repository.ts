import { and, asc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { type ApiKeyScope, apiKeys } from '../../platform/db/schema.js';

const columns = {
  id: apiKeys.id,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  scopes: apiKeys.scopes,
  createdBy: apiKeys.createdBy,
  rateLimitPerMinute: apiKeys.rateLimitPerMinute,
  expiresAt: apiKeys.expiresAt,
  lastUsedAt: apiKeys.lastUsedAt,
  revokedAt: apiKeys.revokedAt,
  createdAt: apiKeys.createdAt,
};

// Tenant executor (RLS applies).

export const listKeys = (tx: Executor, tenantId: string) =>
  tx.select(columns).from(apiKeys).where(eq(apiKeys.tenantId, tenantId)).orderBy(asc(apiKeys.createdAt));

export async function insertKey(
  tx: Executor,
  v: {
    tenantId: string;
    name: string;
    prefix: string;
    keyHash: string;
    scopes: ApiKeyScope[];
    createdBy: string;
    expiresAt: Date | null;
    rateLimitPerMinute: number | null;
  },
) {
  const [row] = await tx.insert(apiKeys).values(v).returning(columns);
  return row!;
}

/** Revokes a live key; returns its hash (to drop cached resolutions), or undefined if there was none. */
export async function revokeKey(tx: Executor, tenantId: string, id: string) {
  const [row] = await tx
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning({ keyHash: apiKeys.keyHash });
  return row?.keyHash;
}

/** A departing member's keys stop with their membership. */
export async function revokeKeysOf(tx: Executor, tenantId: string, userId: string) {
  const rows = await tx
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.createdBy, userId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id, keyHash: apiKeys.keyHash });
  return rows;
}

// System executor: a key is resolved before any tenant is known.

export const findLiveKeyByHash = async (db: Executor, keyHash: string) =>
  (
    await db
      .select({
        id: apiKeys.id,
        tenantId: apiKeys.tenantId,
        createdBy: apiKeys.createdBy,
        scopes: apiKeys.scopes,
        expiresAt: apiKeys.expiresAt,
        rateLimitPerMinute: apiKeys.rateLimitPerMinute,
      })
      .from(apiKeys)
      .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)))
      .limit(1)
  )[0];

/** At most one write a minute per key, however busy it is. */
export const touchKey = (db: Executor, tenantId: string, id: string) =>
  db
    .update(apiKeys)
    .set({ lastUsedAt: sql`now()` })
    .where(
      and(
        eq(apiKeys.tenantId, tenantId),
        eq(apiKeys.id, id),
        or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, sql`now() - interval '1 minute'`)),
      ),
    );
