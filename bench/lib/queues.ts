import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { createBullmqQueue } from '../../src/platform/queue/bullmq.js';
import type { JobQueue, QueueDefinition } from '../../src/platform/queue/index.js';
import { createPgBossQueue } from '../../src/platform/queue/pgboss.js';

/**
 * Queue throughput: jobs enqueued per second and no-op jobs processed per second, through
 * Quire's queue port (the BullMQ and pg-boss adapters) and through each library used directly,
 * in the same run. The ratio port / raw is the platform's overhead.
 */
export interface QueueSettings {
  redisUrl: string;
  databaseUrl: string;
  jobs: number;
  /** Enqueues in flight at once (a busy API), and consumer concurrency. */
  parallel: number;
  concurrency: number;
}

export interface QueueSample {
  enqueuePerSec: number;
  processPerSec: number;
}

type Runner = { name: string; label: string; run(s: QueueSettings): Promise<QueueSample> };

const def: QueueDefinition = {
  name: 'bench',
  priority: 1,
  attempts: 1,
  backoff: { type: 'fixed', delayMs: 1000 },
  timeoutMs: 60_000,
};

async function inParallel(total: number, parallel: number, one: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < total) await one(next++);
    }),
  );
}

async function waitFor(done: () => number, total: number, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (done() < total) {
    if (Date.now() > deadline) throw new Error(`only ${done()} of ${total} jobs processed`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const perSec = (n: number, startedAt: number) => (n * 1000) / (performance.now() - startedAt);

/** Enqueue all (timed), then start consumers and time until every job has run. */
async function measure(
  s: QueueSettings,
  enqueue: (i: number) => Promise<unknown>,
  consume: (onJob: () => void) => Promise<void>,
): Promise<QueueSample> {
  const t0 = performance.now();
  await inParallel(s.jobs, s.parallel, enqueue);
  const enqueuePerSec = perSec(s.jobs, t0);
  let done = 0;
  const t1 = performance.now();
  await consume(() => done++);
  await waitFor(() => done, s.jobs);
  return { enqueuePerSec, processPerSec: perSec(s.jobs, t1) };
}

async function viaPort(s: QueueSettings, queue: JobQueue): Promise<QueueSample> {
  await queue.start();
  try {
    return await measure(
      s,
      (i) => queue.enqueue('bench', 'noop', { i }),
      (onJob) =>
        queue.work(
          'bench',
          async () => {
            onJob();
          },
          { concurrency: s.concurrency },
        ),
    );
  } finally {
    await queue.stopWorkers(5_000);
    await queue.close();
  }
}

function pgRunner(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  return {
    pool,
    db: {
      executeSql: async (text: string, values?: unknown[]) => ({ rows: (await pool.query(text, values)).rows }),
    },
  };
}

const stopped = new Set<string>();

/** pg-boss on its own schema and pool, dropped afterwards. */
async function withRawBoss(
  s: QueueSettings,
  fn: (boss: PgBoss, queue: string, s: QueueSettings) => Promise<QueueSample>,
) {
  const { pool, db } = pgRunner(s.databaseUrl);
  const schema = `pgboss_raw_${randomBytes(3).toString('hex')}`;
  const boss = new PgBoss({ db, schema, supervise: false, schedule: false } as PgBoss.ConstructorOptions);
  await boss.start();
  const name = `bench_${randomBytes(3).toString('hex')}`;
  await boss.createQueue(name);
  try {
    return await fn(boss, name, s);
  } finally {
    stopped.add(name);
    await boss.stop({ graceful: false, wait: true, close: false } as PgBoss.StopOptions);
    await new Promise((r) => setTimeout(r, 50));
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  }
}

export const queueRunners: Runner[] = [
  {
    name: 'bullmq-raw',
    label: 'BullMQ Queue.add / Worker',
    async run(s) {
      const prefix = `qbench_${randomBytes(4).toString('hex')}`;
      const connection = new Redis(s.redisUrl, { maxRetriesPerRequest: null });
      const queue = new Queue('bench', { connection, prefix, defaultJobOptions: { removeOnComplete: true } });
      // Connected before the clock starts, as the port's start() is.
      await queue.waitUntilReady();
      let worker: Worker | undefined;
      try {
        return await measure(
          s,
          (i) => queue.add('noop', { i }),
          async (onJob) => {
            worker = new Worker(
              'bench',
              async () => {
                onJob();
              },
              { connection, prefix, concurrency: s.concurrency },
            );
          },
        );
      } finally {
        await worker?.close();
        await queue.obliterate({ force: true });
        await queue.close();
        await connection.quit();
      }
    },
  },
  {
    name: 'bullmq-port',
    label: "Quire's queue port on BullMQ",
    async run(s) {
      const prefix = `qbench_${randomBytes(4).toString('hex')}`;
      const queue = createBullmqQueue({ redisUrl: s.redisUrl, prefix, queues: [def], retentionMs: 60_000 });
      try {
        return await viaPort(s, queue);
      } finally {
        const r = new Redis(s.redisUrl);
        const keys = await r.keys(`${prefix}:*`);
        if (keys.length) await r.del(...keys);
        await r.quit();
      }
    },
  },
  {
    name: 'pgboss-raw',
    label: 'pg-boss send / fetch + complete, tight loop',
    run: (s) =>
      withRawBoss(s, (boss, name) =>
        measure(
          s,
          (i) => boss.send(name, { i }),
          async (onJob) => {
            // The library's ceiling: fetch a batch, complete it, fetch again, no polling pause.
            void (async () => {
              for (;;) {
                const jobs = await boss.fetch(name, { batchSize: s.concurrency });
                if (jobs.length === 0) {
                  if (stopped.has(name)) return;
                  await new Promise((r) => setTimeout(r, 5));
                  continue;
                }
                for (const _ of jobs) onJob();
                await boss.complete(
                  name,
                  jobs.map((j) => j.id),
                );
              }
            })();
          },
        ),
      ),
  },
  {
    name: 'pgboss-work',
    label: 'pg-boss send / work() (0.5 s polling), 200 jobs',
    // Bound by its polling pause, not by work: a few hundred jobs show the rate.
    run: (all) =>
      withRawBoss({ ...all, jobs: Math.min(all.jobs, 200) }, (boss, name, s) =>
        measure(
          s,
          (i) => boss.send(name, { i }),
          async (onJob) => {
            await boss.work(name, { batchSize: s.concurrency, pollingIntervalSeconds: 0.5 }, async (jobs) => {
              for (const _ of jobs) onJob();
            });
          },
        ),
      ),
  },
  {
    name: 'pgboss-port',
    label: "Quire's queue port on pg-boss",
    async run(s) {
      const { pool, db } = pgRunner(s.databaseUrl);
      const schema = `pgboss_port_${randomBytes(3).toString('hex')}`;
      const queue = createPgBossQueue({ db, queues: [def], retentionMs: 60_000, pollIntervalMs: 500, schema });
      try {
        return await viaPort(s, queue);
      } finally {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await pool.end();
      }
    },
  },
];

export function formatQueueTable(results: { name: string; label: string; samples: QueueSample[] }[]): string {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? Number.NaN;
  };
  const rows = results.map((r) => ({
    ...r,
    enq: median(r.samples.map((x) => x.enqueuePerSec)),
    proc: median(r.samples.map((x) => x.processPerSec)),
  }));
  // Each port case against the same library's raw ceiling; pg-boss's own work() is shown beside it.
  const raw = (name: string) => rows.find((r) => r.name === name.replace(/-(port|work)$/, '-raw'));
  const lines = [
    'queue case   | through                                    | enqueued/s | processed/s | enqueue × raw | process × raw',
    '-------------|--------------------------------------------|------------|-------------|---------------|--------------',
  ];
  for (const r of rows) {
    const base = raw(r.name);
    const ratio = (a: number, b?: number) => (b ? (a / b).toFixed(2) : '1.00');
    lines.push(
      `${r.name.padEnd(12)} | ${r.label.padEnd(42)} | ${r.enq.toFixed(0).padStart(10)} | ${r.proc.toFixed(0).padStart(11)} | ` +
        `${ratio(r.enq, base === r ? undefined : base?.enq).padStart(13)} | ${ratio(r.proc, base === r ? undefined : base?.proc).padStart(13)}`,
    );
  }
  return lines.join('\n');
}
