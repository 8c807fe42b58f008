import { randomUUID } from 'node:crypto';
import type { Cache } from '../../platform/cache/index.js';
import type { Database, TenantContext } from '../../platform/db/index.js';
import type { MemberRole, TenantSettings } from '../../platform/db/schema.js';
import { conflict, forbidden, isUniqueViolation, notFound, unprocessable } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import type { ApiKeysService } from '../api-keys/service.js';
import type { AuditLog } from '../audit/service.js';
import { recordContentEvent } from '../delivery/events.js';
import type { ContentVersions } from '../delivery/versions.js';
import type { Outbox } from '../jobs/outbox.js';
import * as repo from './repository.js';

export interface UserDirectory {
  findUserIdByEmail(email: string): Promise<string | undefined>;
  /** Memberships changed: cached views of these users must go. */
  forgetUsers(...userIds: string[]): Promise<void>;
}

const iso = (d: Date) => d.toISOString();
const slugKey = (slug: string) => `tenant-slug:${slug}`;
const toTenantDto = (t: {
  id: string;
  name: string;
  slug: string;
  settings: TenantSettings;
  createdAt: Date;
  updatedAt: Date;
}) => ({
  id: t.id,
  name: t.name,
  slug: t.slug,
  settings: t.settings,
  createdAt: iso(t.createdAt),
  updatedAt: iso(t.updatedAt),
});

export function createTenantsService(deps: {
  db: Database;
  users: UserDirectory;
  cache: Cache;
  outbox: Outbox;
  versions: ContentVersions;
  audit: AuditLog;
  /** A departing member's admin API keys are revoked with their membership. */
  apiKeys: Pick<ApiKeysService, 'revokeKeysOf' | 'forget'>;
}) {
  const { db, users, cache, outbox } = deps;

  /**
   * Owner and admin manage members, but only an owner touches an owner (grants, demotes or
   * removes one), and a tenant never loses its last owner. Members may always leave.
   */
  async function changeMember(ctx: TenantContext, userId: string, next: MemberRole | null) {
    const leaving = next === null && userId === ctx.userId;
    const revokedKeys = await inTenant(db, ctx, leaving ? null : 'members:manage', async (tx, actorRole) => {
      const owners = await repo.lockOwners(tx, ctx.tenantId);
      const target = await repo.getMembership(tx, ctx.tenantId, userId);
      if (!target) throw notFound('Member');
      const touchesOwner = target.role === 'owner' || next === 'owner';
      if (touchesOwner && actorRole !== 'owner' && !leaving) {
        throw forbidden('Only an owner can grant, change or remove the owner role');
      }
      if (target.role === 'owner' && next !== 'owner' && owners.length <= 1) {
        throw unprocessable('last_owner', 'A tenant must keep at least one owner; make someone else owner first');
      }
      // A leaver's posts are handed over in the same transaction (a trigger, drizzle/0008).
      if (next === null) await repo.deleteMembership(tx, ctx.tenantId, userId);
      else await repo.setRole(tx, ctx.tenantId, userId, next);
      await deps.audit.record(tx, ctx.tenantId, {
        action: next === null ? 'member.removed' : 'member.role_changed',
        actorUserId: ctx.userId,
        target: { type: 'user', id: userId },
        details: next === null ? { role: target.role, left: leaving } : { from: target.role, to: next },
      });
      return next === null ? deps.apiKeys.revokeKeysOf(tx, ctx.tenantId, userId) : [];
    });
    await Promise.all([users.forgetUsers(userId), deps.apiKeys.forget(revokedKeys)]);
    // Their author profile and bylines leave the public content.
    if (next === null) await deps.versions.bump(ctx.tenantId).catch(() => undefined);
  }

  return {
    async create(userId: string, input: { name: string; slug: string }) {
      try {
        const tenant = await db.transaction((tx) =>
          repo.insertTenantWithOwner(tx, { name: input.name, slug: input.slug, ownerId: userId }),
        );
        // A lookup of this subdomain before the tenant existed may be cached as a miss.
        await Promise.all([users.forgetUsers(userId), cache.invalidate(slugKey(input.slug))]);
        return toTenantDto(tenant);
      } catch (err) {
        if (isUniqueViolation(err, 'tenants_slug_key')) throw conflict('slug_taken', 'This slug is already taken');
        throw err;
      }
    },

    async listMine(userId: string) {
      const rows = await repo.listTenantsOfUser(db.system, userId);
      return rows.map((r) => ({ ...toTenantDto(r), role: r.role }));
    },

    /** Whether the tenant requires a second factor of its staff: read by the guard on every request, so cached. */
    async requiresMfa(tenantId: string): Promise<boolean> {
      return cache.getOrLoad(`tenant-policy:${tenantId}`, async () => repo.getRequireMfa(db.system, tenantId));
    },

    /** Resolves a subdomain on every request, so cached; slugs never change and tenants are not deleted. */
    async findIdBySlug(slug: string): Promise<string | undefined> {
      const id = await cache.getOrLoad(
        `tenant-slug:${slug}`,
        async () => (await repo.findTenantIdBySlug(db.system, slug)) ?? null,
        {
          // An unknown slug is remembered briefly, so a flood of bad hosts does not reach the database.
          ttlSeconds: 3_600,
        },
      );
      return id ?? undefined;
    },

    get: (ctx: TenantContext) =>
      inTenant(db, ctx, 'tenant:read', async (tx, role) => {
        const t = await repo.getTenant(tx, ctx.tenantId);
        if (!t) throw notFound('Tenant');
        return { ...toTenantDto(t), role };
      }),

    /** Readers see settings (title, language...) in the Content API and feeds: an event, and their caches go. */
    async updateSettings(ctx: TenantContext, settings: TenantSettings) {
      const dto = await inTenant(db, ctx, 'tenant:update', async (tx) => {
        const t = await repo.updateSettings(tx, ctx.tenantId, settings);
        if (!t) throw notFound('Tenant');
        await recordContentEvent(outbox, tx, {
          event: 'settings.updated',
          tenantId: ctx.tenantId,
          resource: { type: 'settings', id: ctx.tenantId },
        });
        return toTenantDto(t);
      });
      outbox.committed();
      await deps.versions.bump(ctx.tenantId).catch(() => undefined);
      return dto;
    },

    /** The owner's security policy: whether staff must sign in with a second factor. */
    async setSecurityPolicy(ctx: TenantContext, policy: { requireMfa: boolean }) {
      const result = await inTenant(db, ctx, 'tenant:security', async (tx) => {
        const before = await repo.getRequireMfa(tx, ctx.tenantId);
        await repo.setRequireMfa(tx, ctx.tenantId, policy.requireMfa);
        if (before !== policy.requireMfa) {
          await deps.audit.record(tx, ctx.tenantId, {
            action: 'tenant.mfa_policy_changed',
            actorUserId: ctx.userId,
            details: { requireMfa: policy.requireMfa },
          });
        }
        return { requireMfa: policy.requireMfa };
      });
      await cache.invalidate(`tenant-policy:${ctx.tenantId}`);
      return result;
    },

    getSecurityPolicy: (ctx: TenantContext) =>
      inTenant(db, ctx, 'tenant:read', async (tx) => ({ requireMfa: await repo.getRequireMfa(tx, ctx.tenantId) })),

    usage: (ctx: TenantContext) =>
      inTenant(db, ctx, 'tenant:usage', async (tx) => ({
        ...(await repo.usage(tx, ctx.tenantId)),
        // Media arrives with uploads; counted here from then on.
        mediaBytes: 0,
      })),

    listMembers: (ctx: TenantContext) =>
      inTenant(db, ctx, 'members:read', async (tx) =>
        (await repo.listMembers(tx, ctx.tenantId)).map((m) => ({ ...m, joinedAt: iso(m.joinedAt) })),
      ),

    /**
     * Adds an existing account at once; an unknown email gets a pending invitation that
     * becomes a membership when that email registers.
     */
    async invite(ctx: TenantContext, input: { email: string; role: MemberRole }) {
      const existingUserId = await deps.users.findUserIdByEmail(input.email);
      const result = await inTenant(db, ctx, 'members:manage', async (tx, actorRole) => {
        if (input.role === 'owner' && actorRole !== 'owner') {
          throw forbidden('Only an owner can grant the owner role');
        }
        if (existingUserId) {
          const added = await repo.insertMembership(tx, ctx.tenantId, existingUserId, input.role);
          if (!added) throw conflict('already_member', 'This person is already a member');
          return { status: 'added' as const, userId: existingUserId, email: input.email, role: input.role };
        }
        const inv = await repo.upsertInvitation(tx, {
          tenantId: ctx.tenantId,
          email: input.email,
          role: input.role,
          invitedBy: ctx.userId,
        });
        const tenant = await repo.getTenant(tx, ctx.tenantId);
        // Each invite sends one email; the key only stops a redelivery from sending it twice.
        await deps.outbox.record(tx, {
          queue: 'email',
          name: 'invitation',
          tenantId: ctx.tenantId,
          payload: { email: inv.email, role: inv.role, tenantName: tenant?.name ?? '' },
          idempotencyKey: `invitation:${inv.id}:${randomUUID()}`,
        });
        return { status: 'invited' as const, invitationId: inv.id, email: inv.email, role: inv.role };
      });
      if (result.status === 'added') await users.forgetUsers(result.userId);
      else deps.outbox.committed();
      return result;
    },

    changeRole: (ctx: TenantContext, userId: string, role: MemberRole) => changeMember(ctx, userId, role),
    removeMember: (ctx: TenantContext, userId: string) => changeMember(ctx, userId, null),

    listInvitations: (ctx: TenantContext) =>
      inTenant(db, ctx, 'members:manage', async (tx) =>
        (await repo.listInvitations(tx, ctx.tenantId)).map((i) => ({ ...i, createdAt: iso(i.createdAt) })),
      ),

    revokeInvitation: (ctx: TenantContext, id: string) =>
      inTenant(db, ctx, 'members:manage', async (tx) => {
        if (!(await repo.deleteInvitation(tx, ctx.tenantId, id))) throw notFound('Invitation');
      }),
  };
}

export type TenantsService = ReturnType<typeof createTenantsService>;
