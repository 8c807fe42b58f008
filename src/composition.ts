import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Config } from './config.js';
import { type AuthService, createAuthService } from './modules/auth/service.js';
import { createAccessTokens } from './modules/auth/tokens.js';
import type { ReadinessCheck } from './modules/health/routes.js';
import { createPostsService, type PostsService } from './modules/posts/service.js';
import { createTenantsService, type TenantsService } from './modules/tenants/service.js';
import type { Database } from './platform/db/index.js';
import { migratePglite, migratePostgres } from './platform/db/migrate.js';
import { createPgDatabase } from './platform/db/pg.js';
import { createPgliteDatabase } from './platform/db/pglite.js';

export interface Container {
  db: Database;
  services: { auth: AuthService; tenants: TenantsService; posts: PostsService };
  readinessChecks: ReadinessCheck[];
  close(): Promise<void>;
}

/** Opens the configured database: PostgreSQL when DATABASE_URL is set, else PGlite under DATA_DIR. */
export async function openDatabase(config: Config, opts: { migrate?: boolean } = {}): Promise<Database> {
  const migrate = opts.migrate ?? config.database.migrateOnStart;
  if (config.database.url) {
    if (migrate) await migratePostgres(config.database.url);
    return createPgDatabase({ url: config.database.url, poolMax: config.database.poolMax });
  }
  const db = await createPgliteDatabase(join(config.dataDir, 'pglite'));
  if (migrate) await migratePglite(db.client);
  return db;
}

/**
 * Without JWT_SECRET (allowed outside production) a random secret is kept beside the embedded
 * data, so tokens survive restarts of the one-line start.
 */
function jwtSecret(config: Config): string {
  if (config.auth.jwtSecret) return config.auth.jwtSecret;
  const file = join(config.dataDir, 'jwt-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(config.dataDir, { recursive: true });
    const secret = randomBytes(48).toString('base64url');
    writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

/** The composition root: picks adapters from config and hands them to the modules. */
export async function createContainer(config: Config, opts: { db?: Database; log?: Logger } = {}): Promise<Container> {
  const db = opts.db ?? (await openDatabase(config));
  const log = opts.log ?? pino({ level: config.logLevel });
  const tokens = createAccessTokens({
    secret: jwtSecret(config),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    accessTokenTtlSeconds: config.auth.accessTokenTtlSeconds,
  });
  const auth = createAuthService({ db, tokens, refreshTokenTtlDays: config.auth.refreshTokenTtlDays, log });
  const tenants = createTenantsService({ db, users: auth });
  const posts = createPostsService({ db });
  return {
    db,
    services: { auth, tenants, posts },
    readinessChecks: [{ name: 'database', check: () => db.ping() }],
    close: () => db.close(),
  };
}
