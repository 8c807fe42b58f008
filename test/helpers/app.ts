import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { createContainer } from '../../src/composition.js';
import { type Config, loadConfig } from '../../src/config.js';
import type { Database } from '../../src/platform/db/index.js';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(
    {
      NODE_ENV: 'test',
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'silent',
      RATE_LIMIT_MAX: '100000',
      AUTH_RATE_LIMIT_MAX: '100000',
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
  app.addHook('onClose', () => container.close());
  await app.ready();
  return app;
}
