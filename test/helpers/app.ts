import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { type Container, createContainer } from '../../src/composition.js';
import { type Config, loadConfig } from '../../src/config.js';
import type { Database } from '../../src/platform/db/index.js';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';
/** 32 bytes, hex: production requires SECRETS_KEY (it seals TOTP and identity-provider secrets). */
export const TEST_SECRETS_KEY = '5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7';

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(
    {
      NODE_ENV: 'test',
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'silent',
      RATE_LIMIT_MAX: '100000',
      AUTH_RATE_LIMIT_MAX: '100000',
      LOGIN_RATE_LIMIT_MAX: '100000',
      RATE_LIMIT_TENANT_MAX: '100000',
      // PGlite runs in the test's own thread: its heavier statements (pg-boss creating its
      // schema) lag the event loop, and load shedding would answer 503. Suites that test
      // shedding turn it on.
      MAX_EVENT_LOOP_DELAY_MS: '0',
      ...overrides,
    },
    '',
  );
}

/** The real app on a real database, for `app.inject()`. */
export async function createTestApp(db: Database, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = testConfig(env);
  const container = await createContainer(config, { db });
  const app = await buildApp({ config, container, logger: false });
  withTestHooks(app, db);
  app.addHook('onClose', () => container.close());
  await app.ready();
  return app;
}

export interface TestStack {
  app: FastifyInstance;
  /** The composition root behind `app`: register test handlers, `startWorkers()`, grant platform admin. */
  container: Container;
  config: Config;
}

/**
 * The real app as `createTestApp` builds it (app before workers, as in main.ts), also handing
 * back its container. Workers are not started: register any test handlers first, then call
 * `container.startWorkers()`. Closing the app closes the container.
 */
export async function createTestStack(
  db: Database,
  env: Record<string, string> = {},
  opts: Omit<NonNullable<Parameters<typeof createContainer>[1]>, 'db'> = {},
): Promise<TestStack> {
  const config = testConfig(env);
  const container = await createContainer(config, { ...opts, db });
  const app = await buildApp({ config, container, logger: false });
  withTestHooks(app, db);
  app.addHook('onClose', () => container.close());
  await app.ready();
  return { app, container, config };
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Test only: marks an account's email as confirmed, as following the emailed link would
     * (factories use it so every test user can publish; the flow itself is tested over SMTP).
     */
    confirmEmailForTest?: (userId: string) => Promise<void>;
  }
}

/** Gives a test app its email-confirmation shortcut (see `confirmEmailForTest`). */
function withTestHooks(app: FastifyInstance, db: Database) {
  app.decorate('confirmEmailForTest', async (userId: string) => {
    await db.query('UPDATE users SET email_verified_at = now() WHERE id = $1', [userId]);
  });
}
