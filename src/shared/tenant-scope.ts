import type { Database, Executor, TenantContext } from '../platform/db/index.js';
import type { MemberRole } from '../platform/db/schema.js';
import { forbidden, notFound } from './errors.js';
import { type Action, can } from './permissions.js';

/**
 * Runs `fn` inside the caller's tenant: a tenant the caller does not belong to is a 404 (it
 * might as well not exist), and `action`, when given, must be allowed for the caller's role.
 */
export function inTenant<T>(
  db: Database,
  ctx: TenantContext,
  action: Action | null,
  fn: (tx: Executor, role: MemberRole) => Promise<T>,
): Promise<T> {
  return db.withTenant(ctx, async (tx, role) => {
    if (!role) throw notFound('Tenant');
    if (action && !can(role, action)) throw forbidden();
    return fn(tx, role);
  });
}
