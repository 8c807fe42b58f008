import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { type QueueName, queueNames } from './modules/jobs/queues.js';

/**
 * Every environment variable Quire reads, parsed once at start-up. A bad value stops the
 * process with one line naming the variable (see `loadConfig`). Keep README's table in step.
 */
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/** A 32-byte key written as hex or base64. */
function sealingKey(v: string, ctx: z.RefinementCtx): Buffer {
  const bytes = /^[0-9a-f]{64}$/i.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  if (bytes.length !== 32) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes, base64 or hex' });
    return z.NEVER;
  }
  return bytes;
}

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HOST: z.string().min(1).default('0.0.0.0'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** Where the embedded database (PGlite) keeps its files when DATABASE_URL is unset. */
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10),
    /** Apply pending migrations when the API starts (`npm run db:migrate` does it on demand). */
    MIGRATE_ON_START: bool.default(true),
    JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    /** PEM private key (Ed25519, P-256 or RSA): tokens are signed with it and its public half is at /.well-known/jwks.json. Escaped `\n` are read as newlines. */
    JWT_PRIVATE_KEY: z
      .string()
      .transform((v) => v.replace(/\\n/g, '\n'))
      .refine((v) => v.includes('-----BEGIN') && v.includes('PRIVATE KEY-----'), 'must be a PEM private key')
      .optional(),
    /** The signing key's id (the `kid` header); derived from the key when unset. */
    JWT_KEY_ID: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    /** Keys that still verify during a rotation: JSON object of kid → HS256 secret or PEM public key. */
    JWT_PREVIOUS_KEYS: z
      .string()
      .transform((v, ctx) => {
        try {
          const parsed = z.record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), z.string().min(32)).parse(JSON.parse(v));
          return Object.fromEntries(Object.entries(parsed).map(([k, m]) => [k, m.replace(/\\n/g, '\n')]));
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON object of key id → secret or PEM public key' });
          return z.NEVER;
        }
      })
      .optional(),
    /**
     * 32 bytes (base64 or hex) sealing secrets at rest: TOTP secrets, identity-provider client
     * secrets. Required in production; elsewhere derived from the signing secret.
     */
    SECRETS_KEY: z
      .string()
      .transform((v, ctx) => sealingKey(v, ctx))
      .optional(),
    /**
     * Keys SECRETS_KEY replaced, comma-separated (same format): values sealed under them still
     * open until `npm run secrets:reseal` has rewritten them under the current key.
     */
    SECRETS_PREVIOUS_KEYS: z
      .string()
      .transform((v, ctx) =>
        v
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean)
          .map((k) => sealingKey(k, ctx)),
      )
      .optional(),
    /**
     * Platform-wide sign-in providers: JSON array of {id, issuer, clientId, clientSecret, name?}.
     * Google and GitHub have presets: OIDC_GOOGLE_CLIENT_ID/SECRET, OIDC_GITHUB_CLIENT_ID/SECRET.
     */
    OIDC_PROVIDERS: z
      .string()
      .transform((v, ctx) => {
        try {
          return z
            .array(
              z
                .object({
                  id: z.string().regex(/^[a-z0-9-]{1,32}$/),
                  issuer: z.url(),
                  clientId: z.string().min(1),
                  clientSecret: z.string().min(1),
                  name: z.string().min(1).max(60).optional(),
                  /** `github`: GitHub's OAuth (github.com or a GitHub Enterprise Server at `issuer`). */
                  type: z.enum(['oidc', 'github']).default('oidc'),
                })
                .strict(),
            )
            .parse(JSON.parse(v));
        } catch {
          ctx.addIssue({
            code: 'custom',
            message: 'must be a JSON array of {id, issuer, clientId, clientSecret, name?}',
          });
          return z.NEVER;
        }
      })
      .optional(),
    OIDC_GOOGLE_CLIENT_ID: z.string().min(1).optional(),
    OIDC_GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
    OIDC_GITHUB_CLIENT_ID: z.string().min(1).optional(),
    OIDC_GITHUB_CLIENT_SECRET: z.string().min(1).optional(),
    /**
     * Development and tests only: identity providers over plain http and on private or loopback
     * addresses (an organization's issuer URL is otherwise https on a public address).
     */
    OIDC_ALLOW_INSECURE: bool.default(false),
    /** DNS servers for domain verification (`host` or `host:port`, comma-separated); the system's when unset. */
    DNS_SERVERS: csv.optional(),
    JWT_ISSUER: z.string().min(1).default('quire'),
    JWT_AUDIENCE: z.string().min(1).default('quire-api'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
    REFRESH_TOKEN_TTL_DAYS: z.coerce.number().int().min(1).max(365).default(30),
    /** Tenants are also reachable as <slug>.<BASE_HOST>, e.g. acme.blog.example.com. */
    BASE_HOST: z
      .string()
      .regex(/^[a-z0-9.-]+(:\d+)?$/i, 'must be a host name such as blog.example.com')
      .optional(),
    CORS_ORIGINS: csv.default([]),
    BODY_LIMIT_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(50 * 1024 * 1024)
      .default(1_048_576),
    RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(600),
    AUTH_RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(30),
    /** Requests per window for one tenant across all its callers (tenant-scoped API routes). */
    /** Requests a minute per admin API key, unless the key sets its own limit. */
    API_KEY_RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(600),
    RATE_LIMIT_TENANT_MAX: z.coerce.number().int().min(1).default(6_000),
    /** Sign-in attempts per window for one client IP and email together. */
    LOGIN_RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(5),
    /** Consecutive failed sign-ins that lock an account, and for how many minutes. */
    AUTH_LOCKOUT_THRESHOLD: z.coerce.number().int().min(1).max(100).default(5),
    AUTH_LOCKOUT_MINUTES: z.coerce.number().int().min(1).max(1_440).default(15),
    /** Password hashes computed at once (each keeps a core busy); default: one core left for the event loop. */
    PASSWORD_HASH_CONCURRENCY: z.coerce
      .number()
      .int()
      .min(1)
      .max(64)
      .default(Math.max(1, availableParallelism() - 1)),
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).default(60_000),
    TRUST_PROXY: bool.default(false),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /** Set → cache, rate limits, pub/sub and queues use Redis (BullMQ); unset → in-process + Postgres queue. */
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
    /** Prefix of every Redis key Quire writes, so deployments can share a server. */
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[a-z0-9_-]{1,32}$/i)
      .default('quire'),
    /** `inline`: the API process also runs the job workers; `off`: run `npm run worker` separately. */
    WORKERS: z.enum(['inline', 'off']).default('inline'),
    /** Which queues a worker process serves (default all), e.g. `export` for a dedicated export worker. */
    WORKER_QUEUES: csv.pipe(z.array(z.enum(queueNames))).optional(),
    /** Per-queue concurrency overrides, e.g. `email=10,export=1`. */
    QUEUE_CONCURRENCY: z
      .string()
      .transform((s, ctx) => {
        const out: Partial<Record<QueueName, number>> = {};
        for (const part of s
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean)) {
          const [name, n] = part.split('=');
          const count = Number(n);
          if (!queueNames.includes(name as QueueName) || !Number.isInteger(count) || count < 1 || count > 1000) {
            ctx.addIssue({ code: 'custom', message: `"${part}" is not <queue>=<1..1000> with a known queue` });
            return z.NEVER;
          }
          out[name as QueueName] = count;
        }
        return out;
      })
      .default({}),
    /** How often an idle Postgres-queue worker and the outbox relay look for work. */
    QUEUE_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(500),
    /** Finished jobs, processed-job keys and dispatched outbox rows older than this are purged. */
    JOB_RETENTION_DAYS: z.coerce.number().int().min(1).max(365).default(7),
    DIGEST_CRON: z.string().min(9).default('0 8 * * 1'),
    MAINTENANCE_CRON: z.string().min(9).default('17 3 * * *'),
    /** Set → mail goes out over SMTP (smtp:// or smtps://, credentials in the URL); unset → mail is logged. */
    SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
      .optional(),
    MAIL_FROM: z.string().min(3).default('Quire <no-reply@quire.localhost>'),
    /** Where people reach the API and its apps; used in links inside emails. */
    PUBLIC_URL: z.url().optional(),
    /** Outbound calls (SMTP, webhooks) time out after this and count towards opening the breaker. */
    OUTBOUND_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /** How long an open circuit breaker waits before letting one call through. */
    BREAKER_RESET_MS: z.coerce.number().int().min(100).default(30_000),
    /** 0 turns the cache off (every read goes to the source): for diagnosis and benchmarks. */
    CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
    /** The in-process layer's TTL: bounds how stale an instance can be if an invalidation is missed. */
    CACHE_L1_TTL_SECONDS: z.coerce.number().int().min(1).max(3_600).default(30),
    CACHE_L1_MAX_ENTRIES: z.coerce.number().int().min(10).default(10_000),
    /** Revisions kept per post or page; the oldest beyond go. */
    REVISIONS_PER_POST: z.coerce.number().int().min(1).max(1_000).default(50),
    /** How long a CDN may serve a public response (s-maxage), and serve it stale while it revalidates. */
    PUBLIC_CACHE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
    PUBLIC_STALE_SECONDS: z.coerce.number().int().min(0).max(604_800).default(86_400),
    /** Set → content changes POST their surrogate keys here (a CDN's purge endpoint); unset → purges are logged. */
    CDN_PURGE_URL: z.url().optional(),
    /** Credential for the purge endpoint (a secret: environment only). */
    CDN_PURGE_TOKEN: z.string().min(1).optional(),
    /** The header the token goes in (Fastly: Fastly-Key); unset → `Authorization: Bearer`. */
    CDN_PURGE_TOKEN_HEADER: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/)
      .optional(),
    /** Load shedding: 503 + Retry-After while the event loop lags more than this (0 = off). */
    MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1_000),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && !env.JWT_SECRET && !env.JWT_PRIVATE_KEY) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'is required in production (or JWT_PRIVATE_KEY)' });
    }
    if (env.NODE_ENV === 'production' && !env.SECRETS_KEY) {
      ctx.addIssue({ code: 'custom', path: ['SECRETS_KEY'], message: 'is required in production' });
    }
    if (env.NODE_ENV === 'production' && env.OIDC_ALLOW_INSECURE) {
      ctx.addIssue({ code: 'custom', path: ['OIDC_ALLOW_INSECURE'], message: 'cannot be on in production' });
    }
  });

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  host: string;
  port: number;
  dataDir: string;
  database: { url?: string; poolMax: number; migrateOnStart: boolean };
  auth: {
    /** Undefined outside production: the composition root then derives a per-data-dir secret. */
    jwtSecret?: string;
    /** Asymmetric signing (wins over jwtSecret), its key id, and the keys still accepted during a rotation. */
    jwtPrivateKey?: string;
    jwtKeyId?: string;
    jwtPreviousKeys?: Record<string, string>;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
    refreshTokenTtlDays: number;
  };
  baseHost?: string;
  corsOrigins: string[];
  bodyLimit: number;
  rateLimit: {
    max: number;
    authMax: number;
    loginMax: number;
    tenantMax: number;
    apiKeyMax: number;
    windowMs: number;
  };
  /** Seals secrets at rest; undefined outside production, then derived from the signing secret. */
  secretsKey?: Buffer;
  /** Keys SECRETS_KEY replaced: still open what they sealed. */
  previousSecretsKeys: Buffer[];
  oidc: {
    providers: Array<{
      id: string;
      issuer: string;
      clientId: string;
      clientSecret: string;
      name: string;
      type: 'oidc' | 'github';
    }>;
    allowInsecure: boolean;
  };
  dnsServers?: string[];
  lockout: { threshold: number; durationMs: number };
  passwordHashConcurrency: number;
  trustProxy: boolean;
  logLevel: Env['LOG_LEVEL'];
  shutdownTimeoutMs: number;
  redis?: { url: string; keyPrefix: string };
  workers: {
    inline: boolean;
    queues: QueueName[];
    concurrency: Partial<Record<QueueName, number>>;
    pollIntervalMs: number;
    retentionDays: number;
    digestCron: string;
    maintenanceCron: string;
  };
  mail: { smtpUrl?: string; from: string };
  publicUrl: string;
  outbound: { timeoutMs: number; breakerResetMs: number };
  cache: { ttlSeconds: number; l1TtlSeconds: number; l1MaxEntries: number };
  maxEventLoopDelayMs: number;
  content: { revisionsPerPost: number; publicCacheSeconds: number; publicStaleSeconds: number };
  cdn: { purgeUrl?: string; token?: string; tokenHeader?: string };
}

/**
 * Presets: Google is OpenID Connect (discovered from its issuer); GitHub is OAuth 2.0 without
 * ID tokens (`type: 'github'`: its endpoints and its verified-email API are built in, for
 * github.com or a GitHub Enterprise Server).
 */
function oidcProviders(e: Env): Config['oidc']['providers'] {
  const list = (e.OIDC_PROVIDERS ?? []).map((p) => ({ ...p, name: p.name ?? p.id }));
  if (e.OIDC_GOOGLE_CLIENT_ID && e.OIDC_GOOGLE_CLIENT_SECRET) {
    list.push({
      id: 'google',
      name: 'Google',
      type: 'oidc',
      issuer: 'https://accounts.google.com',
      clientId: e.OIDC_GOOGLE_CLIENT_ID,
      clientSecret: e.OIDC_GOOGLE_CLIENT_SECRET,
    });
  }
  if (e.OIDC_GITHUB_CLIENT_ID && e.OIDC_GITHUB_CLIENT_SECRET) {
    list.push({
      id: 'github',
      name: 'GitHub',
      type: 'github',
      issuer: 'https://github.com',
      clientId: e.OIDC_GITHUB_CLIENT_ID,
      clientSecret: e.OIDC_GITHUB_CLIENT_SECRET,
    });
  }
  return list;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment (plus an optional `.env` in the working directory) into Config. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, envFile = '.env'): Config {
  if (source === process.env && envFile && existsSync(envFile)) {
    // Node's own parser; variables already set in the environment win over the file.
    process.loadEnvFile(envFile);
  }
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = issue?.path.join('.') || 'environment';
    throw new ConfigError(`Invalid configuration: ${name}: ${issue?.message ?? 'is invalid'}`);
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    dataDir: e.DATA_DIR,
    database: {
      url: e.DATABASE_URL,
      poolMax: e.DATABASE_POOL_MAX,
      migrateOnStart: e.MIGRATE_ON_START,
    },
    auth: {
      jwtSecret: e.JWT_SECRET,
      jwtPrivateKey: e.JWT_PRIVATE_KEY,
      jwtKeyId: e.JWT_KEY_ID,
      jwtPreviousKeys: e.JWT_PREVIOUS_KEYS,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
    },
    baseHost: e.BASE_HOST?.toLowerCase(),
    corsOrigins: e.CORS_ORIGINS,
    bodyLimit: e.BODY_LIMIT_BYTES,
    rateLimit: {
      max: e.RATE_LIMIT_MAX,
      authMax: e.AUTH_RATE_LIMIT_MAX,
      loginMax: e.LOGIN_RATE_LIMIT_MAX,
      tenantMax: e.RATE_LIMIT_TENANT_MAX,
      apiKeyMax: e.API_KEY_RATE_LIMIT_MAX,
      windowMs: e.RATE_LIMIT_WINDOW_MS,
    },
    secretsKey: e.SECRETS_KEY,
    previousSecretsKeys: e.SECRETS_PREVIOUS_KEYS ?? [],
    oidc: { providers: oidcProviders(e), allowInsecure: e.OIDC_ALLOW_INSECURE },
    dnsServers: e.DNS_SERVERS?.length ? e.DNS_SERVERS : undefined,
    lockout: { threshold: e.AUTH_LOCKOUT_THRESHOLD, durationMs: e.AUTH_LOCKOUT_MINUTES * 60_000 },
    passwordHashConcurrency: e.PASSWORD_HASH_CONCURRENCY,
    trustProxy: e.TRUST_PROXY,
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    redis: e.REDIS_URL ? { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX } : undefined,
    workers: {
      inline: e.WORKERS === 'inline',
      queues: e.WORKER_QUEUES?.length ? e.WORKER_QUEUES : [...queueNames],
      concurrency: e.QUEUE_CONCURRENCY,
      pollIntervalMs: e.QUEUE_POLL_INTERVAL_MS,
      retentionDays: e.JOB_RETENTION_DAYS,
      digestCron: e.DIGEST_CRON,
      maintenanceCron: e.MAINTENANCE_CRON,
    },
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM },
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT || 3000}`).replace(/\/$/, ''),
    outbound: { timeoutMs: e.OUTBOUND_TIMEOUT_MS, breakerResetMs: e.BREAKER_RESET_MS },
    cache: {
      ttlSeconds: e.CACHE_TTL_SECONDS,
      l1TtlSeconds: e.CACHE_L1_TTL_SECONDS,
      l1MaxEntries: e.CACHE_L1_MAX_ENTRIES,
    },
    maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY_MS,
    content: {
      revisionsPerPost: e.REVISIONS_PER_POST,
      publicCacheSeconds: e.PUBLIC_CACHE_SECONDS,
      publicStaleSeconds: e.PUBLIC_STALE_SECONDS,
    },
    cdn: { purgeUrl: e.CDN_PURGE_URL, token: e.CDN_PURGE_TOKEN, tokenHeader: e.CDN_PURGE_TOKEN_HEADER },
  };
}

/** For the entry points: the config, or one line on stderr and exit code 1. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}
