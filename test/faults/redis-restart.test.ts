import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migratePostgres } from '../../src/platform/db/migrate.js';
import { createPgDatabase } from '../../src/platform/db/pg.js';
import type { JobQueue } from '../../src/platform/queue/index.js';
import {
  createFaultPlatform,
  createFaultQueue,
  type Exit,
  effectCount,
  FAULT_JOB,
  FAULT_QUEUE,
  FAULT_TABLES_SQL,
  freePort,
  killHard,
  reportLine,
  sleep,
  spawnWorker,
  tally,
  type WorkerProcess,
  waitFor,
} from '../fixtures/faults.js';
import { createServerDatabase } from '../helpers/db.js';

/**
 * Redis goes away and comes back (same port, same AOF directory) while a producer keeps
 * enqueueing and a worker process keeps consuming through the BullMQ adapter. Every enqueue the
 * producer saw accepted must run, and its effect happen once. The Redis is one this suite
 * starts on a spare port, so the shared one is never touched.
 */
const serverUrl = process.env.TEST_DATABASE_URL;
const N = 300;
const STOP_AFTER = 100;

interface RedisServer {
  child: ChildProcess;
  exited: Promise<Exit>;
  log(): string;
}

function startRedis(port: number, dir: string): RedisServer {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      dir,
      '--save',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    // No redis-server on PATH: fail with that, not an unhandled 'error' event.
    child.on('error', (err) => {
      log += `redis-server did not start: ${err.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  return { child, exited, log: () => log };
}

/** One PING on a connection that never retries: true when Redis answers now. */
async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

describe.skipIf(!serverUrl)('Redis restart under load (BullMQ, AOF)', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const workers: WorkerProcess[] = [];
  const redisServers: RedisServer[] = [];
  let db: ReturnType<typeof createPgDatabase>;
  let dbUrl: string;
  let dir: string;
  let port: number;
  let redisUrl: string;

  beforeAll(async () => {
    const target = await createServerDatabase(serverUrl!);
    cleanups.push(() => target.drop());
    dbUrl = target.url;
    await migratePostgres(dbUrl);
    db = createPgDatabase({ url: dbUrl, poolMax: 4 });
    cleanups.unshift(() => db.close());
    await db.query(FAULT_TABLES_SQL);
    dir = mkdtempSync(join(tmpdir(), 'quire-redis-restart-'));
    port = await freePort();
    redisUrl = `redis://127.0.0.1:${port}`;
    const first = startRedis(port, dir);
    redisServers.push(first);
    await waitFor('our redis-server', () => redisAnswers(redisUrl), 15_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${first.log()}`);
    });
  });

  afterAll(async () => {
    try {
      for (const w of workers) killHard(w.child);
      await Promise.all(workers.map((w) => w.exited));
      // Bounded: a producer whose Redis never came back would wait for it forever.
      for (const fn of cleanups) {
        await Promise.race([Promise.resolve().then(fn), sleep(10_000)]).catch((err: Error) =>
          console.warn(`cleanup: ${err.message}`),
        );
      }
    } finally {
      // Whatever happened above: no redis-server of ours outlives the suite.
      for (const r of redisServers) killHard(r.child);
      await Promise.all(redisServers.map((r) => r.exited));
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  // SIGTERM as the brief asks (Redis fsyncs its AOF and exits), and SIGKILL: with
  // appendfsync always every write Redis acknowledged is on disk before the reply.
  it.each(['SIGTERM', 'SIGKILL'] as const)(
    `runs each of ${N} accepted jobs exactly once across a Redis restart (%s)`,
    { timeout: 120_000 },
    async (signal) => {
      const prefix = `quire_restart_${randomBytes(3).toString('hex')}:jobs`;
      const worker = spawnWorker({
        BACKEND: 'bullmq',
        DATABASE_URL: dbUrl,
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: prefix,
        JOB_MS: '100',
        CONCURRENCY: '10',
        // A job can be taken (moved to active, in the AOF) by a command whose reply died with
        // Redis; ioredis re-sends the command, which takes the next job, and the first sits active
        // under a lock nobody renews until the stalled check hands it back. With the defaults
        // (30 s / 30 s) that is 30-60 s; these bound it at ~12 s. The lock outlives the outage.
        LOCK_DURATION_MS: '10000',
        STALLED_INTERVAL_MS: '2000',
      });
      workers.push(worker);
      await worker.ready;

      const producer: JobQueue = createFaultQueue({ backend: 'bullmq', db, redisUrl, prefix });
      cleanups.unshift(() => producer.close());
      await producer.start();
      const platform = createFaultPlatform(db, producer);

      const run = randomBytes(3).toString('hex');
      const accepted = new Map<string, string>();
      const spans: { start: number; end: number }[] = [];
      let failedAttempts = 0;
      let givenUp = false;

      // The producer: four lanes, each sending a job every 40 ms; an enqueue that fails (or has not
      // resolved within 10 s) is sent again with the same key until one is accepted. Only a
      // resolved enqueue counts.
      const LANES = 4;
      const lane = async (l: number) => {
        for (let i = l; i < N && !givenUp; i += LANES) {
          const key = `restart:${run}:${i}`;
          while (!givenUp) {
            const start = Date.now();
            try {
              const id = await Promise.race([
                platform.enqueue(FAULT_QUEUE, FAULT_JOB, { n: i }, { idempotencyKey: key }),
                sleep(10_000).then(() => Promise.reject(new Error('enqueue did not resolve in 10 s'))),
              ]);
              accepted.set(key, id);
              spans.push({ start, end: Date.now() });
              break;
            } catch {
              failedAttempts++;
              await sleep(100);
            }
          }
          await sleep(40);
        }
      };
      const produce = () => Promise.all(Array.from({ length: LANES }, (_, l) => lane(l)));

      // The fault: once a third is accepted, Redis stops, stays away ~2 s and comes back on the
      // same port and AOF directory.
      let acceptedBeforeStop = 0;
      let doneBeforeStop = 0;
      let answeredWhileDown = true;
      let downAt = 0;
      let stopAt = new Date();
      let backAt = 0;
      let restartAt = 0;
      const outage = async () => {
        await waitFor('a third of the jobs to be accepted', () => accepted.size >= STOP_AFTER, 60_000, 5);
        // ...and only while the worker is in the middle of a job (it may have caught up).
        await waitFor(
          'a job to be mid-run',
          async () => {
            const { rows } = await db.query(
              `SELECT count(*)::int AS n FROM fault_runs r
                WHERE NOT EXISTS (SELECT 1 FROM fault_effects e WHERE e.job_key = r.job_key)`,
            );
            return Number(rows[0]?.n) > 0;
          },
          30_000,
          2,
        );
        acceptedBeforeStop = accepted.size;
        doneBeforeStop = await effectCount(db, [...accepted.keys()]);
        const current = redisServers.at(-1)!;
        stopAt = new Date();
        current.child.kill(signal);
        const exit = await current.exited;
        downAt = Date.now();
        expect(exit).toEqual(signal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal });
        answeredWhileDown = await redisAnswers(redisUrl);
        await sleep(2_000);
        restartAt = Date.now();
        redisServers.push(startRedis(port, dir));
        await waitFor('redis-server to come back', () => redisAnswers(redisUrl), 15_000);
        backAt = Date.now();
      };

      await Promise.all([
        produce(),
        outage().catch((err) => {
          givenUp = true;
          throw err;
        }),
      ]);
      const keys = [...accepted.keys()];
      await waitFor(
        'every accepted job to complete',
        async () =>
          (await effectCount(db, keys)) === keys.length &&
          (await producer.counts(FAULT_QUEUE)).completed === keys.length,
        90_000,
        200,
      ).catch((err: Error) => console.warn(err.message));

      const t = await tally(db, producer, accepted);
      // Jobs the stalled check handed back (BullMQ's per-job counter, `stc` in the job's hash).
      const raw = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      const stalled = await Promise.all(
        [...accepted.values()].map((id) => raw.hget(`${prefix}:${FAULT_QUEUE}:${id}`, 'stc')),
      );
      raw.disconnect();
      const recovered = stalled.filter((n) => Number(n) > 0).length;
      // Enqueues in flight while Redis was certainly away (exited, not yet restarted): they
      // waited and resolved once it was back.
      const heldOver = spans.filter((s) => s.start < restartAt && s.end > downAt).length;
      // Jobs the worker was running when Redis went: started before, effect applied after.
      const midRun = await db.query(
        `SELECT count(DISTINCT r.job_key)::int AS n FROM fault_runs r JOIN fault_effects e USING (job_key)
          WHERE r.job_key = ANY($1::text[]) AND r.at < $2 AND e.at > $2`,
        [keys, stopAt],
      );
      const runningAtStop = Number(midRun.rows[0]?.n ?? 0);
      console.log(reportLine(t));
      console.log(
        `  ${signal}: redis down ${backAt - downAt} ms after ${acceptedBeforeStop} accepted (${doneBeforeStop} done, ` +
          `${runningAtStop} running); ` +
          `${heldOver} enqueue(s) waited it out, ${failedAttempts} failed and were retried; ` +
          `${recovered} job(s) recovered by the stalled check; ${t.runs} runs`,
      );
      worker.child.kill('SIGTERM');
      const workerExit = await worker.exited;

      expect(answeredWhileDown).toBe(false);
      expect(acceptedBeforeStop).toBeLessThan(N);
      expect(heldOver + failedAttempts).toBeGreaterThan(0);
      expect(runningAtStop).toBeGreaterThan(0);
      expect(accepted.size).toBe(N);
      expect({ lost: t.lostKeys, duplicated: t.duplicatedKeys }).toEqual({ lost: [], duplicated: [] });
      expect(t.completed).toBe(N);
      // The same worker process rode out the restart, quietly, and still shut down cleanly.
      expect(workerExit).toEqual({ code: 0, signal: null });
      expect(worker.stderr()).toBe('');
      // Redis replayed its AOF on the way back up.
      expect(redisServers.at(-1)!.log()).toMatch(/DB loaded from append only file/);
    },
  );
});
