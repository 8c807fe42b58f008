import { and, desc, eq, lt, or, type SQL, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Database, Executor, TenantContext } from '../../platform/db/index.js';
import { auditLog, memberships } from '../../platform/db/schema.js';
import { badRequest } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import { currentOrigin } from './context.js';

/** Everything the log records; the names are the API's `action` filter values. */
export const auditActions = [
  'login.succeeded',
  'login.failed',
  'account.locked',
  'refresh_token.reused',
  'sessions.revoked',
  'password.changed',
  'password.reset',
  'member.role_changed',
  'member.removed',
  'member.provisioned',
  'content_key.created',
  'content_key.revoked',
  'api_key.created',
  'api_key.revoked',
  'mfa.enabled',
  'mfa.disabled',
  'mfa.challenge_failed',
  'mfa.recovery_code_used',
  'mfa.recovery_codes_regenerated',
  'tenant.mfa_policy_changed',
  'sso.configured',
  'sso.removed',
  'sso.enforcement_changed',
  'sso.domain_added',
  'sso.domain_verified',
  'sso.domain_removed',
  'sso.login_refused',
  'identity.linked',
] as const;
export type AuditAction = (typeof auditActions)[number];

export interface AuditEvent {
  action: AuditAction;
  actorUserId: string | null;
  target?: { type: string; id: string };
  details?: Record<string, unknown>;
}

const rowOf = (e: AuditEvent) => {
  const origin = currentOrigin();
  return {
    action: e.action,
    actorUserId: e.actorUserId,
    ip: origin?.ip ?? null,
    userAgent: origin?.userAgent ?? null,
    targetType: e.target?.type ?? null,
    targetId: e.target?.id ?? null,
    // An action taken with an API key names the key beside its creator (the actor).
    details: origin?.apiKeyId ? { ...e.details, viaApiKey: origin.apiKeyId } : (e.details ?? {}),
  };
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The audit log. Tenant events are written in the transaction of the change they record; an
 * event about a person (a sign-in, a password change) goes to every tenant they belong to, as
 * a best effort after the fact: a failed audit write is logged, never turned into a failed login.
 */
export function createAuditLog(deps: { db: Database; log: Logger }) {
  const { db, log } = deps;
  return {
    /** In the caller's transaction (tenant role or system). */
    async record(tx: Executor, tenantId: string, e: AuditEvent) {
      await tx.insert(auditLog).values({ tenantId, ...rowOf(e) });
    },

    /** In each tenant the user is a member of (none: nothing to record, e.g. before any tenant). */
    async recordForUser(userId: string, e: AuditEvent) {
      const r = rowOf(e);
      try {
        await db.system.execute(sql`
          insert into ${auditLog} (tenant_id, action, actor_user_id, ip, user_agent, target_type, target_id, details)
          select m.tenant_id, ${r.action}, ${r.actorUserId}::uuid, ${r.ip}, ${r.userAgent}, ${r.targetType},
                 ${r.targetId}, ${JSON.stringify(r.details)}::jsonb
            from ${memberships} m where m.user_id = ${userId}::uuid`);
      } catch (err) {
        log.error(
          { err, event: 'audit.write_failed', action: e.action, userId },
          'an audit event could not be written',
        );
      }
    },

    /** Newest first, cursor-paginated (owners and admins). */
    list: (ctx: TenantContext, q: { limit: number; cursor?: string; action?: AuditAction }) =>
      inTenant(db, ctx, 'audit:read', async (tx) => {
        const where: (SQL | undefined)[] = [eq(auditLog.tenantId, ctx.tenantId)];
        if (q.action) where.push(eq(auditLog.action, q.action));
        if (q.cursor) {
          const [at, id] = Buffer.from(q.cursor, 'base64url').toString('utf8').split('|');
          const when = new Date(at ?? '');
          if (!id || !UUID.test(id) || Number.isNaN(when.getTime())) {
            throw badRequest('invalid_cursor', 'cursor is not one this API returned');
          }
          where.push(or(lt(auditLog.at, when), and(eq(auditLog.at, when), lt(auditLog.id, id))));
        }
        const rows = await tx
          .select()
          .from(auditLog)
          .where(and(...where))
          .orderBy(desc(auditLog.at), desc(auditLog.id))
          .limit(q.limit + 1);
        const page = rows.slice(0, q.limit);
        const last = page[page.length - 1];
        return {
          data: page.map((r) => ({
            id: r.id,
            at: r.at.toISOString(),
            action: r.action as AuditAction,
            actorUserId: r.actorUserId,
            ip: r.ip,
            userAgent: r.userAgent,
            target: r.targetType && r.targetId ? { type: r.targetType, id: r.targetId } : null,
            details: r.details,
          })),
          nextCursor:
            rows.length > q.limit && last
              ? Buffer.from(`${last.at.toISOString()}|${last.id}`).toString('base64url')
              : null,
        };
      }),
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
