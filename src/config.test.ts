import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

/** Parses `env` alone (no .env file) and returns the error it throws, if any. */
function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, '');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({}, '')).toEqual({
      env: 'development',
      host: '0.0.0.0',
      port: 3000,
      dataDir: './data',
      database: { url: undefined, poolMax: 10, migrateOnStart: true },
      auth: {
        jwtSecret: undefined,
        jwtPrivateKey: undefined,
        jwtKeyId: undefined,
        jwtPreviousKeys: undefined,
        issuer: 'quire',
        audience: 'quire-api',
        accessTokenTtlSeconds: 900,
        refreshTokenTtlDays: 30,
      },
      baseHost: undefined,
      corsOrigins: [],
      bodyLimit: 1_048_576,
      rateLimit: { max: 600, authMax: 30, loginMax: 5, tenantMax: 6_000, apiKeyMax: 600, windowMs: 60_000 },
      secretsKey: undefined,
      previousSecretsKeys: [],
      oidc: { providers: [], allowInsecure: false },
      dnsServers: undefined,
      lockout: { threshold: 5, durationMs: 900_000 },
      passwordHashConcurrency: Math.max(1, availableParallelism() - 1),
      trustProxy: false,
      logLevel: 'info',
      shutdownTimeoutMs: 10_000,
      redis: undefined,
      workers: {
        inline: true,
        queues: ['email', 'publishing', 'events', 'media', 'digest', 'export', 'webhooks', 'maintenance'],
        concurrency: {},
        pollIntervalMs: 500,
        retentionDays: 7,
        digestCron: '0 8 * * 1',
        maintenanceCron: '17 3 * * *',
      },
      mail: { smtpUrl: undefined, from: 'Quire <no-reply@quire.localhost>' },
      publicUrl: 'http://localhost:3000',
      outbound: { timeoutMs: 10_000, breakerResetMs: 30_000 },
      cache: { ttlSeconds: 300, l1TtlSeconds: 30, l1MaxEntries: 10_000 },
      maxEventLoopDelayMs: 1_000,
      content: { revisionsPerPost: 50, publicCacheSeconds: 300, publicStaleSeconds: 86_400 },
      cdn: { purgeUrl: undefined, token: undefined, tokenHeader: undefined },
    });
  });

  it('reads every variable it documents', () => {
    const c = loadConfig(
      {
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: '8080',
        DATA_DIR: '/var/lib/quire',
        DATABASE_URL: 'postgresql://app@db:5432/quire',
        DATABASE_POOL_MAX: '25',
        MIGRATE_ON_START: '0',
        JWT_SECRET: 's'.repeat(32),
        JWT_KEY_ID: 'k2026',
        JWT_PREVIOUS_KEYS: JSON.stringify({ old: 'o'.repeat(32) }),
        JWT_ISSUER: 'iss',
        JWT_AUDIENCE: 'aud',
        ACCESS_TOKEN_TTL_SECONDS: '60',
        REFRESH_TOKEN_TTL_DAYS: '7',
        BASE_HOST: 'Blog.Example.COM:8443',
        CORS_ORIGINS: 'https://a.example',
        BODY_LIMIT_BYTES: '2048',
        RATE_LIMIT_MAX: '10',
        AUTH_RATE_LIMIT_MAX: '3',
        LOGIN_RATE_LIMIT_MAX: '2',
        RATE_LIMIT_TENANT_MAX: '7',
        AUTH_LOCKOUT_THRESHOLD: '3',
        AUTH_LOCKOUT_MINUTES: '2',
        PASSWORD_HASH_CONCURRENCY: '3',
        RATE_LIMIT_WINDOW_MS: '1000',
        TRUST_PROXY: 'true',
        LOG_LEVEL: 'silent',
        SHUTDOWN_TIMEOUT_MS: '500',
        REDIS_URL: 'rediss://:pw@cache:6380/2',
        REDIS_KEY_PREFIX: 'blog_eu',
        WORKERS: 'off',
        WORKER_QUEUES: 'export, media',
        QUEUE_CONCURRENCY: 'email=10,export=2',
        QUEUE_POLL_INTERVAL_MS: '250',
        JOB_RETENTION_DAYS: '14',
        DIGEST_CRON: '0 9 * * 5',
        MAINTENANCE_CRON: '0 4 * * *',
        SMTP_URL: 'smtps://u:p@mail.example:465',
        MAIL_FROM: 'Blog <blog@example.com>',
        PUBLIC_URL: 'https://blog.example.com/',
        OUTBOUND_TIMEOUT_MS: '2000',
        BREAKER_RESET_MS: '5000',
        CACHE_TTL_SECONDS: '60',
        CACHE_L1_TTL_SECONDS: '5',
        CACHE_L1_MAX_ENTRIES: '500',
        MAX_EVENT_LOOP_DELAY_MS: '0',
        REVISIONS_PER_POST: '5',
        PUBLIC_CACHE_SECONDS: '60',
        PUBLIC_STALE_SECONDS: '600',
        CDN_PURGE_URL: 'https://api.cdn.example/service/abc/purge',
        CDN_PURGE_TOKEN: 'purge-token',
        CDN_PURGE_TOKEN_HEADER: 'Fastly-Key',
        API_KEY_RATE_LIMIT_MAX: '9',
        SECRETS_KEY: 'ab'.repeat(32),
        SECRETS_PREVIOUS_KEYS: ` ${'cd'.repeat(32)} , ${Buffer.alloc(32, 7).toString('base64')}`,
        OIDC_PROVIDERS: JSON.stringify([
          { id: 'okta', issuer: 'https://acme.okta.example', clientId: 'c', clientSecret: 's' },
        ]),
        OIDC_GOOGLE_CLIENT_ID: 'g-id',
        OIDC_GOOGLE_CLIENT_SECRET: 'g-secret',
        OIDC_GITHUB_CLIENT_ID: 'gh-id',
        OIDC_GITHUB_CLIENT_SECRET: 'gh-secret',
        DNS_SERVERS: '9.9.9.9,127.0.0.1:5353',
        SOMETHING_ELSE: 'ignored',
      },
      '',
    );
    expect(c).toEqual({
      env: 'production',
      host: '127.0.0.1',
      port: 8080,
      dataDir: '/var/lib/quire',
      database: { url: 'postgresql://app@db:5432/quire', poolMax: 25, migrateOnStart: false },
      auth: {
        jwtSecret: 's'.repeat(32),
        jwtPrivateKey: undefined,
        jwtKeyId: 'k2026',
        jwtPreviousKeys: { old: 'o'.repeat(32) },
        issuer: 'iss',
        audience: 'aud',
        accessTokenTtlSeconds: 60,
        refreshTokenTtlDays: 7,
      },
      baseHost: 'blog.example.com:8443',
      corsOrigins: ['https://a.example'],
      bodyLimit: 2048,
      rateLimit: { max: 10, authMax: 3, loginMax: 2, tenantMax: 7, apiKeyMax: 9, windowMs: 1000 },
      secretsKey: Buffer.from('ab'.repeat(32), 'hex'),
      previousSecretsKeys: [Buffer.from('cd'.repeat(32), 'hex'), Buffer.alloc(32, 7)],
      oidc: {
        providers: [
          {
            id: 'okta',
            name: 'okta',
            type: 'oidc',
            issuer: 'https://acme.okta.example',
            clientId: 'c',
            clientSecret: 's',
          },
          {
            id: 'google',
            name: 'Google',
            type: 'oidc',
            issuer: 'https://accounts.google.com',
            clientId: 'g-id',
            clientSecret: 'g-secret',
          },
          {
            id: 'github',
            name: 'GitHub',
            type: 'github',
            issuer: 'https://github.com',
            clientId: 'gh-id',
            clientSecret: 'gh-secret',
          },
        ],
        allowInsecure: false,
      },
      dnsServers: ['9.9.9.9', '127.0.0.1:5353'],
      lockout: { threshold: 3, durationMs: 120_000 },
      passwordHashConcurrency: 3,
      trustProxy: true,
      logLevel: 'silent',
      shutdownTimeoutMs: 500,
      redis: { url: 'rediss://:pw@cache:6380/2', keyPrefix: 'blog_eu' },
      workers: {
        inline: false,
        queues: ['export', 'media'],
        concurrency: { email: 10, export: 2 },
        pollIntervalMs: 250,
        retentionDays: 14,
        digestCron: '0 9 * * 5',
        maintenanceCron: '0 4 * * *',
      },
      mail: { smtpUrl: 'smtps://u:p@mail.example:465', from: 'Blog <blog@example.com>' },
      publicUrl: 'https://blog.example.com',
      outbound: { timeoutMs: 2000, breakerResetMs: 5000 },
      cache: { ttlSeconds: 60, l1TtlSeconds: 5, l1MaxEntries: 500 },
      maxEventLoopDelayMs: 0,
      content: { revisionsPerPost: 5, publicCacheSeconds: 60, publicStaleSeconds: 600 },
      cdn: { purgeUrl: 'https://api.cdn.example/service/abc/purge', token: 'purge-token', tokenHeader: 'Fastly-Key' },
    });
  });

  it.each([
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ SMTP_URL: 'mail.example' }, 'SMTP_URL'],
    [{ WORKERS: 'sometimes' }, 'WORKERS'],
    [{ WORKER_QUEUES: 'email,sms' }, 'WORKER_QUEUES'],
    [{ QUEUE_CONCURRENCY: 'email=0' }, 'QUEUE_CONCURRENCY'],
    [{ QUEUE_CONCURRENCY: 'fax=3' }, 'QUEUE_CONCURRENCY'],
    [{ CDN_PURGE_URL: 'not a url' }, 'CDN_PURGE_URL'],
    [{ JWT_PRIVATE_KEY: 'not a pem' }, 'JWT_PRIVATE_KEY'],
    [{ JWT_PREVIOUS_KEYS: '{"k": "short"}' }, 'JWT_PREVIOUS_KEYS'],
    [{ JWT_PREVIOUS_KEYS: 'not json' }, 'JWT_PREVIOUS_KEYS'],
    [{ CDN_PURGE_TOKEN_HEADER: 'Bad: header' }, 'CDN_PURGE_TOKEN_HEADER'],
    [{ REVISIONS_PER_POST: '0' }, 'REVISIONS_PER_POST'],
    [{ SECRETS_KEY: 'c2hvcnQ=' }, 'SECRETS_KEY'],
    [{ SECRETS_PREVIOUS_KEYS: `${'ab'.repeat(32)},c2hvcnQ=` }, 'SECRETS_PREVIOUS_KEYS'],
    [{ OIDC_PROVIDERS: '[{"id":"x"}]' }, 'OIDC_PROVIDERS'],
    [{ OIDC_PROVIDERS: 'nope' }, 'OIDC_PROVIDERS'],
    [{ API_KEY_RATE_LIMIT_MAX: '0' }, 'API_KEY_RATE_LIMIT_MAX'],
  ])('rejects %o naming %s', (env, name) => {
    expect(failure(env).message.startsWith(`Invalid configuration: ${name}`)).toBe(true);
  });

  it.each([
    ['70000', 'Too big: expected number to be <=65535'],
    ['-1', 'Too small'],
    ['abc', 'expected number'],
    ['3.5', 'expected int'],
  ])('a bad PORT (%s) fails with one line naming PORT', (port, reason) => {
    const err = failure({ PORT: port });
    expect(err.message).not.toContain('\n');
    expect(err.message.startsWith('Invalid configuration: PORT: ')).toBe(true);
    expect(err.message).toContain(reason);
  });

  it('reports one variable in one line even when several are bad', () => {
    const err = failure({ PORT: 'x', LOG_LEVEL: 'loud', BODY_LIMIT_BYTES: '1' });
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(/^Invalid configuration: (PORT|LOG_LEVEL|BODY_LIMIT_BYTES): \S/);
  });

  it('production requires JWT_SECRET or JWT_PRIVATE_KEY, and SECRETS_KEY; elsewhere they may be absent', () => {
    expect(failure({ NODE_ENV: 'production', SECRETS_KEY: 'ab'.repeat(32) }).message).toBe(
      'Invalid configuration: JWT_SECRET: is required in production (or JWT_PRIVATE_KEY)',
    );
    expect(failure({ NODE_ENV: 'production', JWT_SECRET: 'k'.repeat(32) }).message).toBe(
      'Invalid configuration: SECRETS_KEY: is required in production',
    );
    expect(
      failure({
        NODE_ENV: 'production',
        JWT_SECRET: 'k'.repeat(32),
        SECRETS_KEY: 'ab'.repeat(32),
        OIDC_ALLOW_INSECURE: 'true',
      }).message,
    ).toBe('Invalid configuration: OIDC_ALLOW_INSECURE: cannot be on in production');
    expect(
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'k'.repeat(32), SECRETS_KEY: 'ab'.repeat(32) }, '').auth
        .jwtSecret,
    ).toBe('k'.repeat(32));
    for (const NODE_ENV of ['development', 'test']) {
      expect(loadConfig({ NODE_ENV }, '').auth.jwtSecret).toBeUndefined();
    }
  });

  it('a short JWT_SECRET is refused anywhere, without echoing it', () => {
    for (const NODE_ENV of ['production', 'development']) {
      const err = failure({ NODE_ENV, JWT_SECRET: 'hunter2-secret' });
      expect(err.message).toBe('Invalid configuration: JWT_SECRET: must be at least 32 characters');
      expect(err.message).not.toContain('hunter2');
    }
  });

  it('parses CORS_ORIGINS as comma-separated, trimmed, without empty entries', () => {
    const origins = (v: string) => loadConfig({ CORS_ORIGINS: v }, '').corsOrigins;
    expect(origins('https://a.example, https://b.example:8443 ,,')).toEqual([
      'https://a.example',
      'https://b.example:8443',
    ]);
    expect(origins('https://only.example')).toEqual(['https://only.example']);
    expect(origins('')).toEqual([]);
    expect(origins(' , ')).toEqual([]);
  });

  it('booleans are true/false/1/0 only', () => {
    const trust = (v: string) => loadConfig({ TRUST_PROXY: v }, '').trustProxy;
    expect([trust('true'), trust('1'), trust('false'), trust('0')]).toEqual([true, true, false, false]);
    expect(failure({ MIGRATE_ON_START: 'yes' }).message).toMatch(/^Invalid configuration: MIGRATE_ON_START: /);
  });

  it.each([
    ['NODE_ENV', 'staging'],
    ['DATABASE_URL', 'mysql://db/quire'],
    ['DATABASE_POOL_MAX', '0'],
    ['BASE_HOST', 'https://blog.example.com'],
    ['BODY_LIMIT_BYTES', '1023'],
    ['ACCESS_TOKEN_TTL_SECONDS', '10'],
    ['RATE_LIMIT_WINDOW_MS', '999'],
    ['LOG_LEVEL', 'verbose'],
    ['HOST', ''],
  ])('rejects %s=%s, naming it', (name, value) => {
    expect(failure({ [name]: value }).message).toMatch(new RegExp(`^Invalid configuration: ${name}: \\S`));
  });

  describe('with a .env file', () => {
    const keys = ['PORT', 'HOST', 'LOG_LEVEL'] as const;
    const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
    let dir: string | undefined;
    afterEach(() => {
      for (const k of keys) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const envFile = (text: string) => {
      dir = mkdtempSync(join(tmpdir(), 'quire-config-'));
      const file = join(dir, '.env');
      writeFileSync(file, text);
      return file;
    };

    it('reads it for process.env, real variables winning', () => {
      for (const k of keys) delete process.env[k];
      process.env.HOST = '10.0.0.1';
      const file = envFile('PORT=4321\nHOST=192.168.0.1\nLOG_LEVEL=warn\n');
      const c = loadConfig(process.env, file);
      expect(c).toMatchObject({ port: 4321, host: '10.0.0.1', logLevel: 'warn' });
    });

    it('ignores it for an explicit source, and a missing file is no error', () => {
      const file = envFile('PORT=4321\n');
      expect(loadConfig({}, file).port).toBe(3000);
      for (const k of keys) delete process.env[k];
      expect(loadConfig(process.env, join(dir!, 'missing.env')).port).toBe(3000);
    });
  });
});
