import { and, asc, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import { memberships, users } from '../../platform/db/schema.js';

/** An author's public profile (memberships joined with users): what readers may see, no email. */
export const publicProfileColumns = {
  id: memberships.userId,
  name: users.name,
  slug: memberships.slug,
  bio: memberships.bio,
  profileImage: memberships.profileImage,
  coverImage: memberships.coverImage,
  website: memberships.website,
  location: memberships.location,
};

const profileColumns = {
  ...publicProfileColumns,
  role: memberships.role,
  updatedAt: memberships.updatedAt,
};
export type ProfilePatch = Partial<
  Pick<typeof memberships.$inferInsert, 'slug' | 'bio' | 'profileImage' | 'coverImage' | 'website' | 'location'>
>;

const members = (tx: Executor) =>
  tx.select(profileColumns).from(memberships).innerJoin(users, eq(users.id, memberships.userId));

export const listProfiles = (tx: Executor, tenantId: string) =>
  members(tx).where(eq(memberships.tenantId, tenantId)).orderBy(asc(users.name), asc(memberships.userId));
export type ProfileRow = Awaited<ReturnType<typeof listProfiles>>[number];

export const findProfile = async (tx: Executor, tenantId: string, userId: string) =>
  (
    await members(tx)
      .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
      .limit(1)
  )[0];

export async function updateProfile(tx: Executor, tenantId: string, userId: string, patch: ProfilePatch) {
  const rows = await tx
    .update(memberships)
    .set({ ...patch, updatedAt: sql`now()` })
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
    .returning({ userId: memberships.userId });
  return rows.length > 0;
}
