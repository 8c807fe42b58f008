import type { Database } from '../../src/platform/db/index.js';
import { createBullmqQueue } from '../../src/platform/queue/bullmq.js';
import type { JobQueue, QueueDefinition } from '../../src/platform/queue/index.js';
import { createPgBossQueue } from '../../src/platform/queue/pgboss.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { assertRedisReachable, dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

/**
 * The queue backends the job suites run against: BullMQ on the real Redis (a key prefix of its
 * own, dropped afterwards) and pg-boss on every database kind of test/helpers/db.ts (PGlite
 * always, PostgreSQL when TEST_DATABASE_URL is set).
 */
export interface QueueBackend {
  name: string;
  /** Opens what the backend needs (fails loudly when a service is missing). */
  setup(): Promise<void>;
  /** A new adapter instance on the same backend (same Redis prefix / same database). */
  adapter(defs: QueueDefinition[]): JobQueue;
  teardown(): Promise<void>;
}

const RETENTION_MS = 3_600_000;

export function bullmqBackend(): QueueBackend {
  const prefix = uniquePrefix('jobs');
  return {
    name: 'bullmq (redis)',
    async setup() {
      await assertRedisReachable();
    },
    adapter: (defs) => createBullmqQueue({ redisUrl: TEST_REDIS_URL, prefix, queues: defs, retentionMs: RETENTION_MS }),
    teardown: () => dropPrefix(prefix),
  };
}

/** pg-boss on a database: its own fresh one from `kind`, or one the suite already opened. */
export function pgbossBackend(kind: (typeof databaseKinds)[number], shared?: () => Database): QueueBackend {
  let tdb: TestDatabase | undefined;
  const db = () => shared?.() ?? tdb?.db ?? missing();
  return {
    name: `pg-boss (${kind.name})`,
    async setup() {
      if (!shared) tdb = await kind.create();
    },
    adapter: (defs) =>
      createPgBossQueue({
        db: { executeSql: (text, values) => db().query(text, values) },
        queues: defs,
        retentionMs: RETENTION_MS,
        pollIntervalMs: 100,
      }),
    async teardown() {
      await tdb?.drop();
    },
  };
}

function missing(): never {
  throw new Error('backend used before setup()');
}

export const queueBackends = (): QueueBackend[] => [bullmqBackend(), ...databaseKinds.map((k) => pgbossBackend(k))];

export { eventually, type Gate, gate, sleep } from '../helpers/wait.js';
