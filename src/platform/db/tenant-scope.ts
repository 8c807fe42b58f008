import { sql } from 'drizzle-orm';
import type { Executor, TenantScope } from './index.js';
import type { MemberRole } from './schema.js';

/** Opens the tenant scope inside an open transaction: membership lookup + context + role, one round trip. */
export async function enterTenant(tx: Executor, ctx: TenantScope): Promise<MemberRole | null> {
  const result = (await tx.execute(
    sql`select app_enter_tenant(${ctx.tenantId}::uuid, ${ctx.userId}::uuid) as role`,
  )) as unknown as { rows: Array<{ role: MemberRole | null }> };
  return result.rows[0]?.role ?? null;
}
