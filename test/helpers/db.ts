import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../../src/platform/db/index.js';
import { migratePglite, migratePostgres } from '../../src/platform/db/migrate.js';
import { createPgDatabase } from '../../src/platform/db/pg.js';
import { createPgliteDatabase } from '../../src/platform/db/pglite.js';

/**
 * The databases an integration suite runs against: embedded PGlite always, and a real
 * PostgreSQL server when TEST_DATABASE_URL is set. With CI=true the server is mandatory:
 * a missing URL or an unreachable server fails the run instead of skipping it.
 */
export interface TestDatabase {
  db: Database;
  /** A URL for this database (PostgreSQL only): lets a test start a real server process on it. */
  url?: string;
  drop(): Promise<void>;
}

export interface DatabaseKind {
  name: 'pglite' | 'postgres';
  create(): Promise<TestDatabase>;
}

const serverUrl = process.env.TEST_DATABASE_URL;
if (process.env.CI === 'true' && !serverUrl) {
  throw new Error('CI=true but TEST_DATABASE_URL is unset: the suite must run against a real PostgreSQL server');
}

const pglite: DatabaseKind = {
  name: 'pglite',
  async create() {
    const db = await createPgliteDatabase();
    await migratePglite(db.client);
    return { db, drop: () => db.close() };
  },
};

/** A fresh database on the server per call, dropped afterwards. */
export async function createServerDatabase(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `quire_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

const postgres = (base: string): DatabaseKind => ({
  name: 'postgres',
  async create() {
    const target = await createServerDatabase(base);
    await migratePostgres(target.url);
    const db = createPgDatabase({ url: target.url, poolMax: 4 });
    return {
      db,
      url: target.url,
      async drop() {
        await db.close();
        await target.drop();
      },
    };
  },
});

export const databaseKinds: DatabaseKind[] = serverUrl ? [pglite, postgres(serverUrl)] : [pglite];
