import { and, eq, gt, isNull, lt, ne, or, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import {
  type AuthTokenPurpose,
  authTokens,
  invitations,
  memberships,
  refreshTokens,
  tenants,
  users,
} from '../../platform/db/schema.js';

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
  v: {
    userId: string;
    familyId: string;
    tokenHash: string;
    tenantId: string | null;
    amr: string[];
    expiresAt: Date;
    ip: string | null;
    userAgent: string | null;
  },
) {
  await db.insert(refreshTokens).values(v);
}

/** A session is live while its newest refresh token is: neither rotated, revoked nor expired. */
const liveToken = and(
  isNull(refreshTokens.rotatedAt),
  isNull(refreshTokens.revokedAt),
  gt(refreshTokens.expiresAt, sql`now()`),
);

/**
 * A user's live sessions (refresh-token families with a token that still works): when each
 * began, when it was last refreshed and from where, newest activity first.
 */
export async function listSessions(db: Executor, userId: string) {
  return db
    .select({
      id: refreshTokens.familyId,
      createdAt: sql<Date>`min(${refreshTokens.createdAt})`.mapWith(refreshTokens.createdAt),
      lastActiveAt: sql<Date>`max(${refreshTokens.createdAt})`.mapWith(refreshTokens.createdAt),
      expiresAt: sql<Date>`max(${refreshTokens.expiresAt})`.mapWith(refreshTokens.expiresAt),
      ip: sql<string | null>`(array_agg(${refreshTokens.ip} order by ${refreshTokens.createdAt} desc))[1]`,
      userAgent: sql<
        string | null
      >`(array_agg(${refreshTokens.userAgent} order by ${refreshTokens.createdAt} desc))[1]`,
      tenantId: sql<string | null>`(array_agg(${refreshTokens.tenantId}))[1]`,
      // The same in every token of a family (array_agg cannot pick one array out of arrays).
      amr: sql<string[]>`min(${refreshTokens.amr})`,
    })
    .from(refreshTokens)
    .where(eq(refreshTokens.userId, userId))
    .groupBy(refreshTokens.familyId)
    .having(sql`bool_or(${liveToken})`)
    .orderBy(sql`max(${refreshTokens.createdAt}) desc`);
}

/** The ids of a user's live sessions (their refresh-token families). */
export async function liveSessionIds(db: Executor, userId: string): Promise<string[]> {
  const rows = await db
    .select({ id: refreshTokens.familyId })
    .from(refreshTokens)
    .where(and(eq(refreshTokens.userId, userId), liveToken));
  return rows.map((r) => r.id);
}

/** Ends one live session of this user, its whole family; false when it is not theirs or has ended already. */
export async function revokeSession(db: Executor, userId: string, familyId: string): Promise<boolean> {
  const live = await db
    .select({ id: refreshTokens.id })
    .from(refreshTokens)
    .where(and(eq(refreshTokens.userId, userId), eq(refreshTokens.familyId, familyId), liveToken));
  if (live.length === 0) return false;
  await revokeFamily(db, familyId);
  return true;
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

/** Revokes every live refresh token of a user, but those of `keepFamily` (the caller's own session). */
export async function revokeUserSessions(db: Executor, userId: string, keepFamily?: string): Promise<number> {
  const rows = await db
    .update(refreshTokens)
    .set({ revokedAt: sql`now()` })
    .where(
      and(
        eq(refreshTokens.userId, userId),
        isNull(refreshTokens.revokedAt),
        keepFamily ? ne(refreshTokens.familyId, keepFamily) : undefined,
      ),
    )
    .returning({ id: refreshTokens.id });
  return rows.length;
}

// --- sign-in failures and lockout ---

/** One more failure; at `threshold` consecutive ones the account locks until `lockMs` from now. */
export async function recordFailedLogin(db: Executor, userId: string, threshold: number, lockMs: number) {
  const [row] = await db
    .update(users)
    .set({
      failedLogins: sql`${users.failedLogins} + 1`,
      lockedUntil: sql`case when ${users.failedLogins} + 1 >= ${threshold}
        then now() + make_interval(secs => ${lockMs / 1000}) else ${users.lockedUntil} end`,
    })
    .where(eq(users.id, userId))
    .returning({ failedLogins: users.failedLogins, lockedUntil: users.lockedUntil });
  return row;
}

/** A success (or a reset) clears the count and any lock. */
export async function clearFailedLogins(db: Executor, userId: string) {
  await db.update(users).set({ failedLogins: 0, lockedUntil: null }).where(eq(users.id, userId));
}

// --- emailed single-use tokens ---

export async function insertAuthToken(
  db: Executor,
  v: { userId: string; purpose: AuthTokenPurpose; tokenHash: string; expiresAt: Date },
) {
  await db.insert(authTokens).values(v);
}

/** Uses a token: only a live, unused one of this purpose matches, once. */
export async function consumeAuthToken(db: Executor, purpose: AuthTokenPurpose, tokenHash: string) {
  const [row] = await db
    .update(authTokens)
    .set({ usedAt: sql`now()` })
    .where(
      and(
        eq(authTokens.tokenHash, tokenHash),
        eq(authTokens.purpose, purpose),
        isNull(authTokens.usedAt),
        gt(authTokens.expiresAt, sql`now()`),
      ),
    )
    .returning({ userId: authTokens.userId });
  return row?.userId;
}

/** A new reset or verification link makes the older unused ones of that purpose void. */
export async function voidAuthTokens(db: Executor, userId: string, purpose: AuthTokenPurpose) {
  await db
    .update(authTokens)
    .set({ usedAt: sql`now()` })
    .where(and(eq(authTokens.userId, userId), eq(authTokens.purpose, purpose), isNull(authTokens.usedAt)));
}

export async function markEmailVerified(db: Executor, userId: string) {
  await db
    .update(users)
    .set({ emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, now())`, updatedAt: sql`now()` })
    .where(eq(users.id, userId));
}

export async function setPassword(db: Executor, userId: string, passwordHash: string) {
  await db
    .update(users)
    .set({ passwordHash, failedLogins: 0, lockedUntil: null, updatedAt: sql`now()` })
    .where(eq(users.id, userId));
}

/** Maintenance: used or expired emailed tokens. */
export async function deleteAuthTokensBefore(db: Executor, before: Date): Promise<number> {
  const rows = await db
    .delete(authTokens)
    .where(or(lt(authTokens.expiresAt, before), lt(authTokens.usedAt, before)))
    .returning({ id: authTokens.id });
  return rows.length;
}
