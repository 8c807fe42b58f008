import { afterAll, beforeAll } from 'vitest';
import { migratePostgres } from '../../src/platform/db/migrate.js';
import { createPgDatabase } from '../../src/platform/db/pg.js';
import type { JobQueue } from '../../src/platform/queue/index.js';
import { type Backend, createFaultQueue, FAULT_TABLES_SQL, killHard, type WorkerProcess } from '../fixtures/faults.js';
import { createServerDatabase } from '../helpers/db.js';
import { assertRedisReachable, dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

export interface FaultSuite {
  db: ReturnType<typeof createPgDatabase>;
  dbUrl: string;
  /** Enqueues (and inspects) from the test process. */
  producer: JobQueue;
  /** Redis key prefix of this suite's BullMQ queues. */
  prefix: string;
  /** Worker processes started by the test: SIGKILLed in afterAll if still running. */
  children: WorkerProcess[];
}

/**
 * The set-up the worker fault suites share: a fresh PostgreSQL database with the counting
 * tables, a producer on the backend under test, and clean-up of processes, keys and database.
 */
export function useFaultSuite(backend: Backend, label: string, serverUrl: string): FaultSuite {
  const suite = { prefix: uniquePrefix(label), children: [] as WorkerProcess[] } as FaultSuite;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  beforeAll(async () => {
    if (backend === 'bullmq') await assertRedisReachable();
    const target = await createServerDatabase(serverUrl);
    cleanups.push(() => target.drop());
    suite.dbUrl = target.url;
    await migratePostgres(suite.dbUrl);
    suite.db = createPgDatabase({ url: suite.dbUrl, poolMax: 4 });
    cleanups.unshift(() => suite.db.close());
    await suite.db.query(FAULT_TABLES_SQL);
    suite.producer = createFaultQueue({ backend, db: suite.db, redisUrl: TEST_REDIS_URL, prefix: suite.prefix });
    cleanups.unshift(() => suite.producer.close());
    await suite.producer.start();
    if (backend === 'bullmq') cleanups.push(() => dropPrefix(suite.prefix));
  });

  afterAll(async () => {
    for (const c of suite.children) killHard(c.child);
    await Promise.all(suite.children.map((c) => c.exited));
    for (const fn of cleanups)
      await Promise.resolve()
        .then(fn)
        .catch((err: Error) => console.warn(`cleanup: ${err.message}`));
  });

  return suite;
}
