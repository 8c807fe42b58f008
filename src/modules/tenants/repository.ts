import { and, asc, count, eq, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../../platform/db/index.js';
import {
  invitations,
  type MemberRole,
  memberships,
  posts,
  type TenantSettings,
  tenants,
  users,
} from '../../platform/db/schema.js';

const tenantColumns = {
  id: tenants.id,
  name: tenants.name,
  slug: tenants.slug,
  settings: tenants.settings,
  createdAt: tenants.createdAt,
  updatedAt: tenants.updatedAt,
};

// --- system executor: before a tenant is chosen ---

export async function insertTenantWithOwner(db: Executor, v: { name: string; slug: string; ownerId: string }) {
  const [tenant] = await db.insert(tenants).values({ name: v.name, slug: v.slug }).returning(tenantColumns);
  await db.insert(memberships).values({ tenantId: tenant!.id, userId: v.ownerId, role: 'owner' });
  return tenant!;
}

export const listTenantsOfUser = (db: Executor, userId: string) =>
  db
    .select({ ...tenantColumns, role: memberships.role })
    .from(memberships)
    .innerJoin(tenants, eq(tenants.id, memberships.tenantId))
    .where(eq(memberships.userId, userId))
    .orderBy(asc(tenants.name), asc(tenants.id));

export const findTenantIdBySlug = async (db: Executor, slug: string) =>
  (await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.slug, slug)).limit(1))[0]?.id;

// --- tenant executor: row-level security applies; queries still scope by tenant ---

export const getTenant = async (tx: Executor, tenantId: string) =>
  (await tx.select(tenantColumns).from(tenants).where(eq(tenants.id, tenantId)).limit(1))[0];

export async function updateSettings(tx: Executor, tenantId: string, settings: TenantSettings) {
  const [row] = await tx
    .update(tenants)
    .set({ settings, updatedAt: sql`now()` })
    .where(eq(tenants.id, tenantId))
    .returning(tenantColumns);
  return row;
}

export async function usage(tx: Executor, tenantId: string) {
  const [p] = await tx
    .select({
      posts: count(),
      published: sql<number>`count(*) filter (where ${posts.status} = 'published')`.mapWith(Number),
      bytes:
        sql<number>`coalesce(sum(octet_length(${posts.title}) + octet_length(${posts.body}) + coalesce(octet_length(${posts.excerpt}), 0)), 0)`.mapWith(
          Number,
        ),
    })
    .from(posts)
    .where(eq(posts.tenantId, tenantId));
  const [m] = await tx.select({ members: count() }).from(memberships).where(eq(memberships.tenantId, tenantId));
  return {
    posts: p?.posts ?? 0,
    publishedPosts: p?.published ?? 0,
    contentBytes: p?.bytes ?? 0,
    members: m?.members ?? 0,
  };
}

export const listMembers = (tx: Executor, tenantId: string) =>
  tx
    .select({
      userId: memberships.userId,
      email: users.email,
      name: users.name,
      role: memberships.role,
      joinedAt: memberships.createdAt,
    })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(eq(memberships.tenantId, tenantId))
    .orderBy(asc(memberships.createdAt), asc(memberships.userId));

export const getMembership = async (tx: Executor, tenantId: string, userId: string) =>
  (
    await tx
      .select({ userId: memberships.userId, role: memberships.role })
      .from(memberships)
      .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
      .limit(1)
  )[0];

/** Locks the tenant's owner rows so concurrent demotions cannot leave it without one. */
export async function lockOwners(tx: Executor, tenantId: string): Promise<string[]> {
  const rows = await tx
    .select({ userId: memberships.userId })
    .from(memberships)
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.role, 'owner')))
    .for('update');
  return rows.map((r) => r.userId);
}

export async function insertMembership(tx: Executor, tenantId: string, userId: string, role: MemberRole) {
  const rows = await tx
    .insert(memberships)
    .values({ tenantId, userId, role })
    .onConflictDoNothing()
    .returning({ userId: memberships.userId });
  return rows.length > 0;
}

export async function setRole(tx: Executor, tenantId: string, userId: string, role: MemberRole) {
  await tx
    .update(memberships)
    .set({ role, updatedAt: sql`now()` })
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)));
}

export async function deleteMembership(tx: Executor, tenantId: string, userId: string) {
  await tx.delete(memberships).where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)));
}

const invitationColumns = {
  id: invitations.id,
  email: invitations.email,
  role: invitations.role,
  invitedBy: invitations.invitedBy,
  createdAt: invitations.createdAt,
};

/** A pending invitation; re-inviting the same email updates its role. */
export async function upsertInvitation(
  tx: Executor,
  v: { tenantId: string; email: string; role: MemberRole; invitedBy: string },
) {
  const [row] = await tx
    .insert(invitations)
    .values(v)
    .onConflictDoUpdate({
      target: [invitations.tenantId, invitations.email],
      targetWhere: sql`accepted_at IS NULL`,
      set: { role: v.role, invitedBy: v.invitedBy },
    })
    .returning(invitationColumns);
  return row!;
}

export const listInvitations = (tx: Executor, tenantId: string) =>
  tx
    .select(invitationColumns)
    .from(invitations)
    .where(and(eq(invitations.tenantId, tenantId), isNull(invitations.acceptedAt)))
    .orderBy(asc(invitations.createdAt));

export async function deleteInvitation(tx: Executor, tenantId: string, id: string): Promise<boolean> {
  const rows = await tx
    .delete(invitations)
    .where(and(eq(invitations.tenantId, tenantId), eq(invitations.id, id), isNull(invitations.acceptedAt)))
    .returning({ id: invitations.id });
  return rows.length > 0;
}

export async function setRequireMfa(tx: Executor, tenantId: string, requireMfa: boolean) {
  await tx.update(tenants).set({ requireMfa, updatedAt: sql`now()` }).where(eq(tenants.id, tenantId));
}

/** Also read by the authorization guard before the tenant's transaction (system executor). */
export async function getRequireMfa(db: Executor, tenantId: string): Promise<boolean> {
  const [row] = await db.select({ requireMfa: tenants.requireMfa }).from(tenants).where(eq(tenants.id, tenantId));
  return row?.requireMfa ?? false;
}
