import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import type { Config } from './config.js';
import { type ApiKeysService, createApiKeysService } from './modules/api-keys/service.js';
import { type AuditLog, createAuditLog } from './modules/audit/service.js';
import { createMfa, type Mfa } from './modules/auth/mfa.js';
import { createPasswordHasher } from './modules/auth/passwords.js';
import { type AuthService, createAuthService } from './modules/auth/service.js';
import { createAccessTokens } from './modules/auth/tokens.js';
import { type AuthorsService, createAuthorsService } from './modules/authors/service.js';
import { type ContentApiService, createContentApiService } from './modules/content-api/service.js';
import { type ContentKeysService, createContentKeysService } from './modules/content-keys/service.js';
import { createPublicCache, type PublicCache } from './modules/delivery/http-cache.js';
import { registerDeliveryJobs } from './modules/delivery/jobs.js';
import { type ContentVersions, createContentVersions } from './modules/delivery/versions.js';
import { registerDigestJobs } from './modules/digest/jobs.js';
import { createExportsService, type ExportsService } from './modules/exports/service.js';
import { createFeedsService, type FeedsService } from './modules/feeds/service.js';
import type { ReadinessCheck } from './modules/health/routes.js';
import { registerMaintenanceJobs } from './modules/jobs/maintenance.js';
import { createOutbox, createOutboxRelay, type OutboxRelay } from './modules/jobs/outbox.js';
import { createJobPlatform, type JobPlatform } from './modules/jobs/platform.js';
import { type QueueName, type QueuePolicy, queueNames, queuePolicies } from './modules/jobs/queues.js';
import { createJobsService, type JobsService } from './modules/jobs/service.js';
import { registerMailJobs } from './modules/mail/jobs.js';
import { registerPublishingJobs } from './modules/posts/jobs.js';
import { deriveExcerpt } from './modules/posts/render.js';
import { createPostsService, type PostsService } from './modules/posts/service.js';
import { createSearchService, type SearchService } from './modules/search/service.js';
import { createOidcClient } from './modules/sso/oidc.js';
import { createSsoService, type SsoService } from './modules/sso/service.js';
import { createTagsService, type TagsService } from './modules/tags/service.js';
import { createTenantsService, type TenantsService } from './modules/tenants/service.js';
import { type Cache, createCache, createPassthroughCache } from './platform/cache/index.js';
import { type CdnPurger, createHttpPurger, createLogPurger } from './platform/cdn/index.js';
import { createSealer, deriveSealingKey } from './platform/crypto/sealer.js';
import type { Database } from './platform/db/index.js';
import { migratePglite, migratePostgres } from './platform/db/migrate.js';
import { createPgDatabase } from './platform/db/pg.js';
import { createPgliteDatabase } from './platform/db/pglite.js';
import type { Mailer } from './platform/mail/index.js';
import { createLogMailer } from './platform/mail/log.js';
import { type JobQueue, type QueueDefinition, startOnFirstUse } from './platform/queue/index.js';
import { createBreaker } from './platform/resilience/breaker.js';
import { createPostgresSearchEngine } from './platform/search/postgres.js';

export interface Container {
  db: Database;
  redis?: Redis;
  /** A fail-fast connection for the rate limiter (requests never wait on Redis). */
  rateLimitRedis?: Redis;
  cache: Cache;
  queue: JobQueue;
  mailer: Mailer;
  jobs: JobPlatform;
  relay: OutboxRelay;
  services: {
    auth: AuthService;
    tenants: TenantsService;
    posts: PostsService;
    pages: PostsService;
    authors: AuthorsService;
    content: ContentApiService;
    feeds: FeedsService;
    tags: TagsService;
    contentKeys: ContentKeysService;
    apiKeys: ApiKeysService;
    mfa: Mfa;
    sso: SsoService;
    jobs: JobsService;
    exports: ExportsService;
    search: SearchService;
    audit: AuditLog;
  };
  readinessChecks: ReadinessCheck[];
  /** Per-tenant content versions: part of every cached public response's key. */
  versions: ContentVersions;
  purger: CdnPurger;
  /** Public responses (Content API, feeds): ETags, CDN headers, cached under the content version. */
  publicCache: PublicCache;
  /** Starts the job consumers and the outbox relay in this process. */
  startWorkers(queues?: readonly QueueName[]): Promise<void>;
  /** Ordered: workers (running jobs finish or go back), relay, queue, cache, Redis, database. */
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

/** Policies with overrides applied (createContainer's `policies` option: tests use short backoffs). */
export function resolvePolicies(overrides: PolicyOverrides = {}): Record<QueueName, QueuePolicy> {
  return Object.fromEntries(queueNames.map((q) => [q, { ...queuePolicies[q], ...overrides[q] }])) as Record<
    QueueName,
    QueuePolicy
  >;
}

export type PolicyOverrides = Partial<Record<QueueName, Partial<QueuePolicy>>>;

const definitionsOf = (policies: Record<QueueName, QueuePolicy>): QueueDefinition[] =>
  queueNames.map((name) => ({ name, ...policies[name] }));

/** BullMQ when Redis is configured; otherwise pg-boss on the app's own database (PGlite included). */
/**
 * BullMQ when Redis is configured; otherwise pg-boss on the app's own database (PGlite
 * included). Adapters are imported on demand: a process loads the one it uses, not both.
 */
export async function createQueue(config: Config, db: Database, policies = resolvePolicies()): Promise<JobQueue> {
  const queueDefinitions = definitionsOf(policies);
  const retentionMs = config.workers.retentionDays * 86_400_000;
  if (config.redis) {
    const { createBullmqQueue } = await import('./platform/queue/bullmq.js');
    return createBullmqQueue({
      redisUrl: config.redis.url,
      prefix: `${config.redis.keyPrefix}:jobs`,
      queues: queueDefinitions,
      retentionMs,
    });
  }
  // pg-boss runs its SQL through the app's own pool (or PGlite's one connection).
  const { createPgBossQueue } = await import('./platform/queue/pgboss.js');
  return createPgBossQueue({
    queues: queueDefinitions,
    retentionMs,
    pollIntervalMs: config.workers.pollIntervalMs,
    db: { executeSql: (text, values) => db.query(text, values) },
  });
}

/** The composition root: picks adapters from config and hands them to the modules. */
export async function createContainer(
  config: Config,
  opts: {
    db?: Database;
    log?: Logger;
    relayHooks?: { onEnqueued?: (ids: number[]) => void | Promise<void> };
    /** Per-queue policy overrides (attempts, backoff, timeout); tests shorten them. */
    policies?: PolicyOverrides;
  } = {},
): Promise<Container> {
  // A database handed in (tests, scripts) belongs to the caller, who closes it.
  const ownsDb = !opts.db;
  const db = opts.db ?? (await openDatabase(config));
  const log = opts.log ?? pino({ level: config.logLevel });
  // Request-path connections fail fast while Redis is away: the cache falls back to the
  // source and the rate limiter lets requests through, instead of requests hanging.
  const failFast = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000 };
  const redisModule = config.redis ? await import('./platform/redis/index.js') : undefined;
  const redis = config.redis ? redisModule?.createRedis(config.redis.url, failFast) : undefined;
  const rateLimitRedis = config.redis
    ? redisModule?.createRedis(config.redis.url, { ...failFast, connectionName: 'quire-ratelimit' })
    : undefined;
  const shared =
    redis && config.redis
      ? (await import('./platform/cache/redis.js')).createRedisTier(redis, {
          url: config.redis.url,
          prefix: config.redis.keyPrefix,
        })
      : undefined;

  const cache =
    config.cache.ttlSeconds === 0
      ? createPassthroughCache()
      : createCache({
          shared,
          l1MaxEntries: config.cache.l1MaxEntries,
          l1TtlSeconds: config.cache.l1TtlSeconds,
          defaultTtlSeconds: config.cache.ttlSeconds,
          defaultStaleSeconds: Math.ceil(config.cache.ttlSeconds / 5),
          onError: (err, where) =>
            where === 'refresh'
              ? log.warn({ err, where }, 'cache: a background refresh failed; the stale value stays until it expires')
              : log.warn({ err, where }, 'cache: Redis unavailable; reading the source'),
        });

  const policies = resolvePolicies(opts.policies);
  const queue = startOnFirstUse(await createQueue(config, db, policies));
  const mailer = config.mail.smtpUrl
    ? (await import('./platform/mail/smtp.js')).createSmtpMailer({
        url: config.mail.smtpUrl,
        from: config.mail.from,
        timeoutMs: config.outbound.timeoutMs,
      })
    : createLogMailer(log);
  const smtpBreaker = createBreaker((m: Parameters<Mailer['send']>[0]) => mailer.send(m), {
    name: 'smtp',
    // The transport's own timeouts (OUTBOUND_TIMEOUT_MS) fire first and end the connection; the
    // breaker's is the backstop, so a send it gives up on is not still going behind its back.
    timeoutMs: config.outbound.timeoutMs * 2,
    // A permanent rejection (5xx: no such mailbox) is about the message, not the server.
    isCallerError: (err) => {
      const code = (err as { responseCode?: unknown }).responseCode;
      return typeof code === 'number' && code >= 500 && code < 600;
    },
    resetMs: config.outbound.breakerResetMs,
    onStateChange: (name, state) =>
      (state === 'open' ? log.error : log.info).call(
        log,
        { event: 'breaker', breaker: name, state },
        `circuit ${name} is ${state}`,
      ),
  });

  const outbox = createOutbox();
  const jobs = createJobPlatform({ db, queue, log, concurrency: config.workers.concurrency, policies });
  const relay = createOutboxRelay({
    db,
    queue: { enqueue: (q, n, d, o) => jobs.enqueue(q as QueueName, n, d, o) },
    log,
    pollIntervalMs: config.workers.pollIntervalMs,
    onEnqueued: opts.relayHooks?.onEnqueued,
  });
  outbox.onCommitted(() => relay.nudge());

  const tokens = createAccessTokens({
    keys: {
      current: config.auth.jwtPrivateKey ?? jwtSecret(config),
      currentKid: config.auth.jwtKeyId,
      previous: config.auth.jwtPreviousKeys,
    },
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    accessTokenTtlSeconds: config.auth.accessTokenTtlSeconds,
  });
  const audit = createAuditLog({ db, log });
  const sealer = createSealer(
    config.secretsKey ?? deriveSealingKey(config.auth.jwtPrivateKey ?? jwtSecret(config)),
    config.previousSecretsKeys,
  );
  const mfa = createMfa({ db, sealer, audit, issuer: 'Quire' });
  const auth = createAuthService({
    mfa,
    db,
    tokens,
    refreshTokenTtlDays: config.auth.refreshTokenTtlDays,
    log,
    cache,
    outbox,
    lockout: config.lockout,
    passwords: createPasswordHasher(config.passwordHashConcurrency),
    audit,
    // Single sign-on is built on the auth service; its enforcement is consulted at refresh.
    refreshPolicy: (session, exec) => sso.refusesSession(session, exec),
  });
  const sso: SsoService = createSsoService({
    db,
    oidc: createOidcClient({
      redirectUri: new URL('/api/v1/auth/oidc/callback', config.publicUrl).href,
      allowInsecure: config.oidc.allowInsecure,
    }),
    sealer,
    audit,
    auth,
    providers: config.oidc.providers,
    dnsServers: config.dnsServers,
  });
  const versions = createContentVersions(cache);
  const apiKeys = createApiKeysService({ db, cache, audit });
  const tenants = createTenantsService({ db, users: auth, cache, outbox, versions, audit, apiKeys });
  const purger = config.cdn.purgeUrl
    ? createHttpPurger({
        url: config.cdn.purgeUrl,
        token: config.cdn.token,
        tokenHeader: config.cdn.tokenHeader,
        timeoutMs: config.outbound.timeoutMs,
      })
    : createLogPurger(log);
  const tags = createTagsService({ db, outbox, versions });
  const contentDeps = { db, outbox, tags, versions, revisionsPerPost: config.content.revisionsPerPost };
  const posts = createPostsService(contentDeps, 'post');
  const pages = createPostsService(contentDeps, 'page');
  const authors = createAuthorsService({ db, outbox, versions });
  const content = createContentApiService({ db, publicUrl: config.publicUrl, baseHost: config.baseHost });
  // The search port: PostgreSQL full-text search (PGlite too); an external engine would plug in here.
  const search = createSearchService({
    db,
    engine: createPostgresSearchEngine({ excerptOf: deriveExcerpt }),
    siteUrl: content.siteUrl,
  });
  const feeds = createFeedsService({ db, siteUrl: content.siteUrl });
  const publicCache = createPublicCache({
    cache,
    versions,
    sharedMaxAgeSeconds: config.content.publicCacheSeconds,
    staleSeconds: config.content.publicStaleSeconds,
  });
  const exports = createExportsService({ db, jobs, dir: join(config.dataDir, 'exports') });
  const send = (m: Parameters<Mailer['send']>[0]) => smtpBreaker.call(m);
  registerMailJobs(jobs, { send, auth, publicUrl: config.publicUrl });
  registerDigestJobs(jobs, { db, send, publicUrl: config.publicUrl, cron: config.workers.digestCron });
  registerPublishingJobs(jobs, { db, log, outbox, versions });
  registerDeliveryJobs(jobs, { purger, versions, log });
  registerMaintenanceJobs(jobs, {
    db,
    auth,
    log,
    retentionMs: config.workers.retentionDays * 86_400_000,
    cron: config.workers.maintenanceCron,
    purgeSignIns: async (before) => (await mfa.purgeChallenges(before)) + (await sso.purgeStates(before)),
  });

  const readinessChecks: ReadinessCheck[] = [{ name: 'database', check: () => db.ping() }];
  if (redis) readinessChecks.push({ name: 'redis', check: async () => void (await redis.ping()) });
  if (queue.kind === 'bullmq') readinessChecks.push({ name: 'queue', check: () => queue.ping() });

  let workersStarted = false;
  let closed = false;
  return {
    db,
    redis,
    rateLimitRedis,
    cache,
    queue,
    mailer,
    jobs,
    relay,
    services: {
      auth,
      tenants,
      posts,
      pages,
      authors,
      content,
      feeds,
      tags,
      contentKeys: createContentKeysService({ db, cache, audit }),
      apiKeys,
      mfa,
      sso,
      audit,
      jobs: createJobsService({ db, queue }),
      exports,
      search,
    },
    readinessChecks,
    versions,
    purger,
    publicCache,
    async startWorkers(queues = config.workers.queues) {
      if (workersStarted) return;
      workersStarted = true;
      await jobs.start(queues);
      relay.start();
    },
    async close() {
      if (closed) return;
      closed = true;
      await jobs.stop(config.shutdownTimeoutMs);
      await relay.stop();
      await queue.close();
      smtpBreaker.shutdown();
      await mailer.close();
      await cache.close();
      await redis?.quit().catch(() => redis.disconnect());
      await rateLimitRedis?.quit().catch(() => rateLimitRedis.disconnect());
      if (ownsDb) await db.close();
    },
  };
}
