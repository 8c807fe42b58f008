import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type Backend,
  createFaultPlatform,
  effectCount,
  FAULT_JOB,
  FAULT_QUEUE,
  reportLine,
  spawnWorker,
  tally,
  waitFor,
} from '../fixtures/faults.js';
import { TEST_REDIS_URL } from '../helpers/redis.js';
import { useFaultSuite } from './suite.js';

/**
 * SIGKILL a worker process while it runs jobs, start another: every job's effect happens
 * exactly once. The jobs the dead worker held come back through the backend's own recovery
 * (BullMQ: its lock lapses and the stalled-job check moves it back to wait; pg-boss: it
 * expires and maintenance fails it into retry), and the platform's idempotency key keeps a
 * re-run from applying an effect a second time.
 */
const serverUrl = process.env.TEST_DATABASE_URL;
const N = 50;

const cases: { backend: Backend; env: Record<string, string>; recoveryEnv: Record<string, string> }[] = [
  // Short locks, so the job the dead worker held is back in about two seconds, not thirty.
  { backend: 'bullmq', env: { LOCK_DURATION_MS: '2000', STALLED_INTERVAL_MS: '1000' }, recoveryEnv: {} },
  // The second worker also runs pg-boss maintenance every second (see counting-worker.ts).
  { backend: 'pg-boss', env: {}, recoveryEnv: { PGBOSS_MAINTENANCE_SECONDS: '1' } },
];

describe.skipIf(!serverUrl).each(cases)('SIGKILL of a worker process on $backend', ({ backend, env, recoveryEnv }) => {
  const suite = useFaultSuite(backend, 'sigkill', serverUrl!);
  const { children } = suite;

  it(`loses and duplicates none of ${N} jobs when the worker running them is killed`, {
    timeout: 120_000,
  }, async () => {
    const platform = createFaultPlatform(suite.db, suite.producer);
    const run = randomBytes(3).toString('hex');
    const jobs = new Map<string, string>();
    for (let i = 0; i < N; i++) {
      const key = `fault:${backend}:${run}:${i}`;
      jobs.set(key, await platform.enqueue(FAULT_QUEUE, FAULT_JOB, { n: i }, { idempotencyKey: key }));
    }
    const keys = [...jobs.keys()];
    const workerEnv = {
      BACKEND: backend,
      DATABASE_URL: suite.dbUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: suite.prefix,
      JOB_MS: '200',
      CONCURRENCY: '10',
      ...env,
    };

    const a = spawnWorker(workerEnv);
    children.push(a);
    await a.ready;
    await waitFor('worker A to apply some effects', async () => (await effectCount(suite.db, keys)) >= 5, 60_000);
    // Kill it as soon as it is in the middle of runs that started under 100 ms ago (a run takes 200).
    await waitFor(
      'worker A to be mid-run',
      async () => {
        const { rows } = await suite.db.query(
          `SELECT count(*)::int AS n FROM fault_runs r
            WHERE r.pid = $1 AND r.at > clock_timestamp() - interval '100 milliseconds'
              AND NOT EXISTS (SELECT 1 FROM fault_effects e WHERE e.job_key = r.job_key)`,
          [a.pid],
        );
        return Number(rows[0]?.n) > 0;
      },
      60_000,
      5,
    );
    a.child.kill('SIGKILL');
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // Runs A started and never finished: its jobs that were active when it died.
    const interrupted = await suite.db.query(
      `SELECT DISTINCT r.job_key FROM fault_runs r
        WHERE r.pid = $1 AND NOT EXISTS (SELECT 1 FROM fault_effects e WHERE e.job_key = r.job_key)`,
      [a.pid],
    );
    const cut = interrupted.rows.map((r) => String(r.job_key));
    const doneByA = await effectCount(suite.db, keys);

    const b = spawnWorker({ ...workerEnv, ...recoveryEnv });
    children.push(b);
    await b.ready;
    await waitFor(
      'every job to complete',
      async () =>
        (await effectCount(suite.db, keys)) === N && (await suite.producer.counts(FAULT_QUEUE)).completed === N,
      90_000,
      200,
    ).catch((err: Error) => console.warn(err.message));

    const t = await tally(suite.db, suite.producer, jobs);
    console.log(reportLine(t));
    console.log(
      `  ${backend}: ${doneByA} done by worker A before SIGKILL, ${cut.length} cut off mid-run, ${t.runs} runs in all`,
    );
    b.child.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });

    expect({ lost: t.lostKeys, duplicated: t.duplicatedKeys }).toEqual({ lost: [], duplicated: [] });
    expect(t.completed).toBe(N);
    // The kill landed mid-job, and every job it cut off was run again and applied by B.
    expect(cut.length).toBeGreaterThan(0);
    const appliedBy = await suite.db.query('SELECT job_key, pid FROM fault_effects WHERE job_key = ANY($1::text[])', [
      cut,
    ]);
    expect(appliedBy.rows.map((r) => [r.job_key, r.pid]).sort()).toEqual(cut.map((k) => [k, b.pid]).sort());
    expect(b.stderr()).toBe('');
  });
});
