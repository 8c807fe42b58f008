import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Cache } from '../../platform/cache/index.js';
import type { Database, Executor, TenantContext } from '../../platform/db/index.js';
import type { ApiKeyScope } from '../../platform/db/schema.js';
import { badRequest, notFound } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import type { AuditLog } from '../audit/service.js';
import { hashToken } from '../auth/tokens.js';
import * as repo from './repository.js';

/** `qak_` and 256 random bits: recognisable in logs and by secret scanners, and only ever stored as SHA-256. */
const KEY = /^qak_[A-Za-z0-9_-]{43}$/;
export const looksLikeApiKey = (token: string) => token.startsWith('qak_');
const cacheKey = (hash: string) => `api-key:${hash}`;
const TOUCH_EVERY_MS = 60_000;
const iso = (d: Date | null) => d?.toISOString() ?? null;

/** What a presented key resolves to. */
export interface ApiKeyPrincipal {
  id: string;
  tenantId: string;
  /** The member the key acts for. */
  userId: string;
  scopes: ApiKeyScope[];
  /** Requests a minute, or null for the deployment default. */
  rateLimitPerMinute: number | null;
}

type Row = Awaited<ReturnType<typeof repo.listKeys>>[number];
const toDto = (k: Row) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes as ApiKeyScope[],
  createdBy: k.createdBy,
  rateLimitPerMinute: k.rateLimitPerMinute,
  createdAt: k.createdAt.toISOString(),
  expiresAt: iso(k.expiresAt),
  lastUsedAt: iso(k.lastUsedAt),
  revokedAt: iso(k.revokedAt),
});

/**
 * Admin API keys for integrations: per tenant, scoped, optional expiry, revocable, shown once.
 * A key acts for the member who created it: the guard allows what its scopes allow and that
 * member's current role allows, and the member's departure revokes their keys.
 */
export function createApiKeysService(deps: { db: Database; cache: Cache; audit: AuditLog }) {
  const { db, cache, audit } = deps;
  /** When this instance last wrote each key's last-used time: at most once a minute, not on every request. */
  const touched = new LRUCache<string, true>({ max: 10_000, ttl: TOUCH_EVERY_MS });

  return {
    create: (
      ctx: TenantContext,
      input: { name: string; scopes: ApiKeyScope[]; expiresAt?: string | null; rateLimitPerMinute?: number | null },
    ) =>
      inTenant(db, ctx, 'api-keys:manage', async (tx) => {
        const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
        if (expiresAt && expiresAt.getTime() <= Date.now()) {
          throw badRequest('validation_failed', 'expiresAt must be in the future', [
            { field: 'body.expiresAt', message: 'must be in the future' },
          ]);
        }
        const key = `qak_${randomBytes(32).toString('base64url')}`;
        const scopes = [...new Set(input.scopes)];
        const row = await repo.insertKey(tx, {
          tenantId: ctx.tenantId,
          name: input.name,
          prefix: key.slice(0, 12),
          keyHash: hashToken(key),
          scopes,
          createdBy: ctx.userId,
          expiresAt,
          rateLimitPerMinute: input.rateLimitPerMinute ?? null,
        });
        await audit.record(tx, ctx.tenantId, {
          action: 'api_key.created',
          actorUserId: ctx.userId,
          target: { type: 'api_key', id: row.id },
          details: { name: row.name, prefix: row.prefix, scopes, expiresAt: iso(expiresAt) },
        });
        return { ...toDto(row), key };
      }),

    list: (ctx: TenantContext) =>
      inTenant(db, ctx, 'api-keys:manage', async (tx) => (await repo.listKeys(tx, ctx.tenantId)).map(toDto)),

    /** Revoked at once on every instance: the cached resolution is invalidated with it. */
    async revoke(ctx: TenantContext, id: string) {
      const hash = await inTenant(db, ctx, 'api-keys:manage', async (tx) => {
        const revoked = await repo.revokeKey(tx, ctx.tenantId, id);
        if (revoked) {
          await audit.record(tx, ctx.tenantId, {
            action: 'api_key.revoked',
            actorUserId: ctx.userId,
            target: { type: 'api_key', id },
          });
        }
        return revoked;
      });
      if (!hash) throw notFound('API key');
      await cache.invalidate(cacheKey(hash));
    },

    /** In the member's removal transaction: their keys are revoked with it. Call `forget` after commit. */
    async revokeKeysOf(tx: Executor, tenantId: string, userId: string) {
      const rows = await repo.revokeKeysOf(tx, tenantId, userId);
      for (const r of rows) {
        await audit.record(tx, tenantId, {
          action: 'api_key.revoked',
          actorUserId: null,
          target: { type: 'api_key', id: r.id },
          details: { reason: 'member_removed', userId },
        });
      }
      return rows.map((r) => r.keyHash);
    },

    forget: (hashes: string[]) => (hashes.length ? cache.invalidate(...hashes.map(cacheKey)) : Promise.resolve()),

    /** The principal behind a key, or null for a malformed, unknown, revoked or expired key. */
    async authenticate(key: string): Promise<ApiKeyPrincipal | null> {
      if (!KEY.test(key)) return null;
      const hash = hashToken(key);
      const found = await cache.getOrLoad(
        cacheKey(hash),
        async () => {
          const row = await repo.findLiveKeyByHash(db.system, hash);
          return row ? { ...row, expiresAt: iso(row.expiresAt) } : null;
        },
        { ttlSeconds: 300 },
      );
      if (!found) return null;
      if (found.expiresAt && Date.parse(found.expiresAt) <= Date.now()) return null;
      // Last-used time, at most once a minute per key; a failure here never fails the request.
      if (!touched.has(found.id)) {
        touched.set(found.id, true);
        repo.touchKey(db.system, found.tenantId, found.id).catch(() => undefined);
      }
      return {
        id: found.id,
        tenantId: found.tenantId,
        userId: found.createdBy,
        scopes: found.scopes as ApiKeyScope[],
        rateLimitPerMinute: found.rateLimitPerMinute,
      };
    },
  };
}

export type ApiKeysService = ReturnType<typeof createApiKeysService>;
