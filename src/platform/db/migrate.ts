import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzleLite } from 'drizzle-orm/pglite';
import { migrate as migrateLite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';

export const migrationsFolder = fileURLToPath(new URL('../../../drizzle', import.meta.url));

// Arbitrary constant: several instances starting together apply migrations one at a time.
const MIGRATION_LOCK = 7_245_913_001;

/** Applies pending migrations on a PostgreSQL server, under an advisory lock. */
export async function migratePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'quire-migrate' });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migratePg(drizzlePg({ client }), { migrationsFolder });
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    await client.end();
  }
}

/** Applies pending migrations on an embedded database. */
export async function migratePglite(client: PGlite): Promise<void> {
  await migrateLite(drizzleLite({ client }), { migrationsFolder });
}
