import { randomBytes } from 'node:crypto';
import type { Cache } from '../../platform/cache/index.js';
import type { Database, TenantContext } from '../../platform/db/index.js';
import { notFound } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import type { AuditLog } from '../audit/service.js';
import { hashToken } from '../auth/tokens.js';
import * as repo from './repository.js';

const KEY = /^[0-9a-f]{26}$/;
const cacheKey = (hash: string) => `content-key:${hash}`;
const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * Content API keys: 26 lowercase hex characters (Ghost's format), read-only access to one
 * tenant's published content. Only a SHA-256 is stored; the key is shown once, at creation.
 */
export function createContentKeysService(deps: { db: Database; cache: Cache; audit: AuditLog }) {
  const { db, cache, audit } = deps;
  const toDto = (k: { id: string; name: string; keyHint: string; createdAt: Date; lastUsedAt: Date | null }) => ({
    id: k.id,
    name: k.name,
    keyHint: `…${k.keyHint}`,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: iso(k.lastUsedAt),
  });

  return {
    create: (ctx: TenantContext, name: string) =>
      inTenant(db, ctx, 'content-keys:manage', async (tx) => {
        const key = randomBytes(13).toString('hex');
        const row = await repo.insertKey(tx, {
          tenantId: ctx.tenantId,
          name,
          keyHash: hashToken(key),
          keyHint: key.slice(-4),
          createdBy: ctx.userId,
        });
        await audit.record(tx, ctx.tenantId, {
          action: 'content_key.created',
          actorUserId: ctx.userId,
          target: { type: 'content_key', id: row.id },
          details: { name, keyHint: row.keyHint },
        });
        return { ...toDto(row), key };
      }),

    list: (ctx: TenantContext) =>
      inTenant(db, ctx, 'content-keys:manage', async (tx) => (await repo.listKeys(tx, ctx.tenantId)).map(toDto)),

    /** Revoked at once on every instance: the cached resolution is invalidated with it. */
    async revoke(ctx: TenantContext, id: string) {
      const hash = await inTenant(db, ctx, 'content-keys:manage', async (tx) => {
        const deleted = await repo.deleteKey(tx, ctx.tenantId, id);
        if (deleted) {
          await audit.record(tx, ctx.tenantId, {
            action: 'content_key.revoked',
            actorUserId: ctx.userId,
            target: { type: 'content_key', id },
          });
        }
        return deleted;
      });
      if (!hash) throw notFound('Content key');
      await cache.invalidate(cacheKey(hash));
    },

    /** The tenant a key reads, or null for a malformed, unknown or revoked key. */
    async resolve(key: string): Promise<string | null> {
      if (!KEY.test(key)) return null;
      const hash = hashToken(key);
      const found = await cache.getOrLoad(
        cacheKey(hash),
        async () => (await repo.findTenantByKeyHash(db.system, hash)) ?? null,
      );
      return found?.tenantId ?? null;
    },
  };
}

export type ContentKeysService = ReturnType<typeof createContentKeysService>;
