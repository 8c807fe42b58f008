import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Database, Executor } from './index.js';
import * as schema from './schema.js';
import { enterTenant } from './tenant-scope.js';

export interface PgOptions {
  url: string;
  poolMax: number;
}

/** PostgreSQL server adapter (node-postgres pool). */
export function createPgDatabase(opts: PgOptions): Database & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: 'quire',
  });
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = drizzle({ client: pool, schema }) as unknown as Executor;
  return {
    kind: 'pg',
    pool,
    system: db,
    withTenant: (ctx, fn) =>
      db.transaction(async (tx) => {
        const role = await enterTenant(tx, ctx);
        return fn(tx, role);
      }),
    transaction: (fn) => db.transaction((tx) => fn(tx)),
    async query(text, values) {
      const r = await pool.query(text, values);
      return { rows: r.rows };
    },
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await pool.end();
    },
  };
}
