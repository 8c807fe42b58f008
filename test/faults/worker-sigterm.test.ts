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
 * SIGTERM to a worker process with jobs running (the deploy case, not a crash): jobs that can
 * finish within the shutdown deadline finish and the process exits 0; jobs that cannot are
 * aborted and handed back to the queue without spending an attempt, and the next worker runs
 * them. Either way every job's effect happens once.
 */
const serverUrl = process.env.TEST_DATABASE_URL;
const N = 10;
const backends: Backend[] = ['bullmq', 'pg-boss'];

describe.skipIf(!serverUrl).each(backends)('SIGTERM of a worker process on %s', (backend) => {
  const suite = useFaultSuite(backend, 'sigterm', serverUrl!);
  const { children } = suite;

  async function enqueueBatch(label: string) {
    const platform = createFaultPlatform(suite.db, suite.producer);
    const run = randomBytes(3).toString('hex');
    const jobs = new Map<string, string>();
    for (let i = 0; i < N; i++) {
      const key = `sigterm:${backend}:${label}:${run}:${i}`;
      jobs.set(key, await platform.enqueue(FAULT_QUEUE, FAULT_JOB, { n: i }, { idempotencyKey: key }));
    }
    return jobs;
  }

  const workerEnv = (over: Record<string, string>) => ({
    BACKEND: backend,
    DATABASE_URL: suite.dbUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: suite.prefix,
    CONCURRENCY: String(N),
    ...over,
  });

  /** Starts a worker and waits until every job of the batch is running in it. */
  async function runningAll(keys: string[], over: Record<string, string>) {
    const w = spawnWorker(workerEnv(over));
    children.push(w);
    await w.ready;
    await waitFor(
      `all ${N} jobs to be running`,
      async () => {
        const { rows } = await suite.db.query(
          'SELECT count(DISTINCT job_key)::int AS n FROM fault_runs WHERE pid = $1 AND job_key = ANY($2::text[])',
          [w.pid, keys],
        );
        return Number(rows[0]?.n) === N;
      },
      60_000,
    );
    return w;
  }

  it('lets running jobs finish within the deadline, then exits 0', { timeout: 90_000 }, async () => {
    const jobs = await enqueueBatch('finish');
    const keys = [...jobs.keys()];
    // Each run takes 1.5 s; the deadline is 10 s.
    const w = await runningAll(keys, { JOB_MS: '1500', STOP_TIMEOUT_MS: '10000' });
    expect(await effectCount(suite.db, keys)).toBe(0);
    w.child.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });

    const t = await tally(suite.db, suite.producer, jobs);
    console.log(reportLine(t));
    expect({ lost: t.lostKeys, duplicated: t.duplicatedKeys, completed: t.completed, runs: t.runs }).toEqual({
      lost: [],
      duplicated: [],
      completed: N,
      runs: N,
    });
    expect(w.stderr()).toBe('');
  });

  it('hands jobs that outlast the deadline back to the queue; the next worker runs them', {
    timeout: 120_000,
  }, async () => {
    const jobs = await enqueueBatch('handback');
    const keys = [...jobs.keys()];
    // Each run takes 20 s; the deadline is 1 s.
    const a = await runningAll(keys, { JOB_MS: '20000', STOP_TIMEOUT_MS: '1000' });
    a.child.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await effectCount(suite.db, keys)).toBe(0);
    for (const id of jobs.values()) {
      const job = await suite.producer.getJob(id);
      // Back in the queue at once, not left active for a lock or an expiry to notice.
      expect(job?.state).toBe('waiting');
    }

    const b = spawnWorker(workerEnv({ JOB_MS: '100' }));
    children.push(b);
    await b.ready;
    await waitFor('every job to complete', async () => (await effectCount(suite.db, keys)) === N, 60_000, 100);
    await waitFor(
      'the queue to report them completed',
      async () => (await tally(suite.db, suite.producer, jobs)).completed === N,
    );
    const t = await tally(suite.db, suite.producer, jobs);
    console.log(reportLine(t));
    expect({ lost: t.lostKeys, duplicated: t.duplicatedKeys }).toEqual({ lost: [], duplicated: [] });
    // The hand-back spent no attempt: worker B's runs are attempt 1 again.
    const { rows } = await suite.db.query(
      'SELECT DISTINCT attempt FROM fault_runs WHERE pid = $1 AND job_key = ANY($2::text[])',
      [b.pid, keys],
    );
    expect(rows.map((r) => Number(r.attempt))).toEqual([1]);
    b.child.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
  });
});
