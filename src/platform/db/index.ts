import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema.js';
import type { MemberRole } from './schema.js';

export * as tables from './schema.js';

/** A Drizzle handle: the pool, PGlite, or a transaction on either. */
export type Executor = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface TenantContext {
  tenantId: string;
  userId: string;
}

/** A tenant's scope with a signed-in caller, or with none (readers of public content: role null). */
export type TenantScope = TenantContext | { tenantId: string; userId: null };

/**
 * The database port. Two ways in:
 * - `withTenant` for everything a tenant owns: one transaction running as the unprivileged
 *   `quire_app` role with the tenant in a transaction-local setting, so row-level security
 *   denies any row a repository forgot to scope. `role` is the caller's membership in that
 *   tenant, or null when the caller is not a member.
 * - `system` for what precedes a tenant (sign-in, tokens, resolving a tenant): runs as the
 *   owner role. Only the auth and tenant-directory repositories use it.
 */
export interface Database {
  readonly kind: 'pg' | 'pglite';
  readonly system: Executor;
  withTenant<T>(ctx: TenantScope, fn: (tx: Executor, role: MemberRole | null) => Promise<T>): Promise<T>;
  /** A system transaction (owner role, no tenant). */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  /**
   * Raw parameterized SQL as the owner role, for infrastructure that brings its own SQL
   * (pg-boss). Text without values may hold several statements.
   */
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
