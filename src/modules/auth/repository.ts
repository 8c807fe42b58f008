import { and, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { invitations, memberships, refreshTokens, tenants, users } from '../../platform/db/schema.js';

// Sign-in happens before any tenant is chosen: everything here runs on the system executor.

export const findUserByEmail = async (db: Executor, email: string) =>
  (await db.select().from(users).where(eq(users.email, email)).limit(1))[0];

export const findUserById = async (db: Executor, id: string) =>
  (await db.select().from(users).where(eq(users.id, id)).limit(1))[0];

export async function insertUser(db: Executor, v: { email: string; name: string; passwordHash: string }) {
  const [row] = await db.insert(users).values(v).returning();
  return row!;
}

/** Turns the pending invitations for an email into memberships; returns how many. */
export async function acceptInvitations(db: Executor, userId: string, email: string): Promise<number> {
  const accepted = await db
    .update(invitations)
    .set({ acceptedAt: sql`now()` })
    .where(and(eq(invitations.email, email), isNull(invitations.acceptedAt)))
    .returning({ tenantId: invitations.tenantId, role: invitations.role });
  if (accepted.length === 0) return 0;
  await db
    .insert(memberships)
    .values(accepted.map((a) => ({ tenantId: a.tenantId, userId, role: a.role })))
    .onConflictDoNothing();
  return accepted.length;
}

export const listMembershipsOfUser = (db: Executor, userId: string) =>
  db
    .select({ tenantId: tenants.id, name: tenants.name, slug: tenants.slug, role: memberships.role })
    .from(memberships)
    .innerJoin(tenants, eq(tenants.id, memberships.tenantId))
    .where(eq(memberships.userId, userId))
    .orderBy(tenants.name);

export async function isMember(db: Executor, tenantId: string, userId: string): Promise<boolean> {
  const rows = await db
    .select({ one: sql`1` })
    .from(memberships)
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
    .limit(1);
  return rows.length > 0;
}

export async function insertRefreshToken(
  db: Executor,
  v: { userId: string; familyId: string; tokenHash: string; tenantId: string | null; expiresAt: Date },
) {
  await db.insert(refreshTokens).values(v);
}

/**
 * Claims a refresh token for rotation in one statement: only a live, never-rotated token
 * matches, so two concurrent refreshes with the same token cannot both succeed.
 */
export async function claimRefreshToken(db: Executor, tokenHash: string) {
  const [row] = await db
    .update(refreshTokens)
    .set({ rotatedAt: sql`now()` })
    .where(
      and(
        eq(refreshTokens.tokenHash, tokenHash),
        isNull(refreshTokens.rotatedAt),
        isNull(refreshTokens.revokedAt),
        gt(refreshTokens.expiresAt, sql`now()`),
      ),
    )
    .returning();
  return row;
}

export const findRefreshToken = async (db: Executor, tokenHash: string) =>
  (await db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1))[0];

/** Revokes every live token of a family (one login's chain of rotations). */
export async function revokeFamily(db: Executor, familyId: string): Promise<number> {
  const rows = await db
    .update(refreshTokens)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)))
    .returning({ id: refreshTokens.id });
  return rows.length;
}

/**
 * Tokens that can no longer be used: expired, or revoked before `revokedBefore`. Rotated tokens
 * stay until they expire, so a replayed one is still recognised and revokes its session.
 */
export async function deleteRefreshTokensBefore(db: Executor, revokedBefore: Date): Promise<number> {
  const rows = await db
    .delete(refreshTokens)
    .where(or(lt(refreshTokens.expiresAt, sql`now()`), lt(refreshTokens.revokedAt, revokedBefore)))
    .returning({ id: refreshTokens.id });
  return rows.length;
}

export async function setPlatformAdmin(db: Executor, email: string, platformAdmin: boolean) {
  const [row] = await db
    .update(users)
    .set({ platformAdmin, updatedAt: sql`now()` })
    .where(eq(users.email, email))
    .returning({ id: users.id });
  return row?.id;
}
