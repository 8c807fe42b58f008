import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import type { Database, Executor } from './index.js';
import * as schema from './schema.js';
import { enterTenant } from './tenant-scope.js';

/**
 * Embedded PostgreSQL (PGlite, WASM) adapter. `dataDir` persists on disk; undefined keeps it
 * in memory (tests). One connection: transactions are serialized by PGlite itself.
 */
export async function createPgliteDatabase(dataDir?: string): Promise<Database & { client: PGlite }> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // pg_trgm: typo-tolerant title search (the migrations create the extension, as on PostgreSQL).
  const client = await PGlite.create(dataDir, { extensions: { pg_trgm } });
  const db = drizzle({ client, schema }) as unknown as Executor;
  let closed = false;
  return {
    kind: 'pglite',
    client,
    system: db,
    withTenant: (ctx, fn) =>
      db.transaction(async (tx) => {
        const role = await enterTenant(tx, ctx);
        return fn(tx, role);
      }),
    transaction: (fn) => db.transaction((tx) => fn(tx)),
    async query(text, values) {
      if (!values?.length) {
        // exec runs several statements; the last one's rows are the answer.
        const results = await client.exec(text);
        return { rows: (results[results.length - 1]?.rows ?? []) as Record<string, unknown>[] };
      }
      const r = await client.query(text, values);
      return { rows: r.rows as Record<string, unknown>[] };
    },
    async ping() {
      if (closed) throw new Error('database is closed');
      await db.execute(sql`select 1`);
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}
