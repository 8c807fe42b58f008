import type { Database, TenantContext } from '../../platform/db/index.js';
import { badRequest, conflict, forbidden, isUniqueViolation, notFound } from '../../shared/errors.js';
import { can } from '../../shared/permissions.js';
import { inTenant } from '../../shared/tenant-scope.js';
import { recordContentEvent } from '../delivery/events.js';
import type { ContentVersions } from '../delivery/versions.js';
import type { Outbox } from '../jobs/outbox.js';
import * as repo from './repository.js';

const toProfileDto = (p: repo.ProfileRow) => ({ ...p, updatedAt: p.updatedAt.toISOString() });
export type ProfileDto = ReturnType<typeof toProfileDto>;

/**
 * Authors' public profiles: one per member and tenant (a person writing for two publications
 * has two). Readers see them through the Content API; never an email address.
 */
export function createAuthorsService(deps: { db: Database; outbox: Outbox; versions: ContentVersions }) {
  const { db, outbox } = deps;
  return {
    list: (ctx: TenantContext) =>
      inTenant(db, ctx, 'authors:read', async (tx) => (await repo.listProfiles(tx, ctx.tenantId)).map(toProfileDto)),

    get: (ctx: TenantContext, userId: string) =>
      inTenant(db, ctx, 'authors:read', async (tx) => {
        const p = await repo.findProfile(tx, ctx.tenantId, userId);
        if (!p) throw notFound('Author');
        return toProfileDto(p);
      }),

    /** Members edit their own profile; owners and admins anyone's. */
    async update(ctx: TenantContext, userId: string, patch: repo.ProfilePatch) {
      if (Object.keys(patch).length === 0) throw badRequest('empty_patch', 'Send at least one field to change');
      const dto = await inTenant(db, ctx, 'authors:update:own', async (tx, role) => {
        if (userId !== ctx.userId && !can(role, 'members:manage')) throw forbidden();
        try {
          if (!(await repo.updateProfile(tx, ctx.tenantId, userId, patch))) throw notFound('Author');
        } catch (err) {
          if (isUniqueViolation(err, 'memberships_tenant_slug_key')) {
            throw conflict('slug_taken', 'Another author in this tenant already has this slug');
          }
          throw err;
        }
        const p = (await repo.findProfile(tx, ctx.tenantId, userId))!;
        await recordContentEvent(outbox, tx, {
          event: 'author.updated',
          tenantId: ctx.tenantId,
          resource: { type: 'author', id: userId, slug: p.slug },
        });
        return toProfileDto(p);
      });
      outbox.committed();
      await deps.versions.bump(ctx.tenantId).catch(() => undefined);
      return dto;
    },
  };
}

export type AuthorsService = ReturnType<typeof createAuthorsService>;
