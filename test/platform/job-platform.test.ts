import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { eq, inArray, sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createJobPlatform, type JobContext, type JobPlatform } from '../../src/modules/jobs/platform.js';
import { type QueueName, type QueuePolicy, queueNames, queuePolicies } from '../../src/modules/jobs/queues.js';
import type { Database, Executor } from '../../src/platform/db/index.js';
import { processedJobs } from '../../src/platform/db/schema.js';
import type { JobInfo, JobQueue, QueueDefinition } from '../../src/platform/queue/index.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { bullmqBackend, eventually, gate, pgbossBackend, type QueueBackend } from './backends.js';

/**
 * The job platform over the queue port, on pg-boss (same database) and BullMQ, each with PGlite
 * and PostgreSQL holding processed_jobs: dispatch by queue and name, the idempotent-consumer
 * check, dead-letter alerts and stuck-job reports.
 */

/** Tiny policies: two attempts a tenth of a second apart; `export` is stuck after 200 ms. */
const policies = Object.fromEntries(
  queueNames.map((name) => [
    name,
    {
      ...queuePolicies[name],
      attempts: 2,
      backoff: { type: 'fixed', delayMs: 100 },
      timeoutMs: name === 'export' ? 200 : queuePolicies[name].timeoutMs,
      concurrency: 2,
    } satisfies QueuePolicy,
  ]),
) as Record<QueueName, QueuePolicy>;

/** The adapter's own run timeout stays long, so a job past the stuck threshold is still active. */
const defs: QueueDefinition[] = queueNames.map((name) => ({ name, ...policies[name], timeoutMs: 30_000 }));

type Entry = Record<string, unknown> & { level: number; msg: string };
function captureLog() {
  const entries: Entry[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) entries.push(JSON.parse(line) as Entry);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), entries };
}

describe.each(databaseKinds)('job platform with processed_jobs on $name', (kind) => {
  let tdb: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    tdb = await kind.create();
    db = tdb.db;
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  const backends: QueueBackend[] = [pgbossBackend(kind, () => db), bullmqBackend()];

  describe.each(backends)('on $name', (backend) => {
    const opened: { queue: JobQueue; platform: JobPlatform }[] = [];
    beforeAll(() => backend.setup());
    afterEach(async () => {
      for (const o of opened.splice(0)) {
        await o.platform.stop(1_000);
        await o.queue.close();
      }
    });
    afterAll(() => backend.teardown());

    const stack = async () => {
      const queue = backend.adapter(defs);
      await queue.start();
      const { log, entries } = captureLog();
      const platform = createJobPlatform({ db, queue, log, concurrency: {}, policies });
      opened.push({ queue, platform });
      const jobIn = (id: string, state: JobInfo['state']) =>
        eventually(async () => {
          const j = await queue.getJob(id);
          return j?.state === state ? j : null;
        }, `job ${id} to be ${state}`);
      return { queue, platform, entries, jobIn };
    };

    it('dispatches each job to the handler registered for its queue and name', async () => {
      const { platform, jobIn } = await stack();
      const seen: Record<string, JobContext[]> = { welcome: [], reset: [], media: [] };
      platform.handle('email', 'welcome', async (job) => {
        seen.welcome!.push(job);
        return { sent: 'welcome' };
      });
      platform.handle('email', 'reset', async (job) => {
        seen.reset!.push(job);
        return { sent: 'reset' };
      });
      platform.handle('media', 'welcome', async (job) => {
        seen.media!.push(job);
        return { resized: true };
      });
      await platform.start(['email', 'media', 'digest']);
      expect(platform.consuming).toEqual(['email', 'media']);

      const key = `welcome-${randomUUID()}`;
      const welcome = await platform.enqueue('email', 'welcome', { to: 'a@x.io' }, { idempotencyKey: key });
      const reset = await platform.enqueue('email', 'reset', { to: 'b@x.io' });
      const media = await platform.enqueue('media', 'welcome', { file: 'c.png' });
      expect((await jobIn(welcome, 'completed')).result).toEqual({ sent: 'welcome' });
      expect((await jobIn(reset, 'completed')).result).toEqual({ sent: 'reset' });
      expect((await jobIn(media, 'completed')).result).toEqual({ resized: true });

      expect(seen.welcome!.map((j) => j.id)).toEqual([welcome]);
      expect(seen.reset!.map((j) => j.id)).toEqual([reset]);
      expect(seen.media!.map((j) => j.id)).toEqual([media]);
      // The key reaches the handler beside the data, not inside it.
      expect(seen.welcome![0]).toMatchObject({ queue: 'email', name: 'welcome', idempotencyKey: key, attempt: 1 });
      expect(seen.welcome![0]!.data).toEqual({ to: 'a@x.io' });
      expect(seen.reset![0]!.idempotencyKey).toBeNull();
      // A keyed job's key is recorded once its effect is done; an unkeyed one records nothing.
      const recorded = await db.system
        .select()
        .from(processedJobs)
        .where(inArray(processedJobs.jobId, [welcome, reset, media]));
      expect(recorded.map((r) => [r.idempotencyKey, r.queue, r.jobId])).toEqual([[key, 'email', welcome]]);
    });

    it('job.once applies a database effect with the key in one transaction: once, and not at all if it fails', async () => {
      const { platform, jobIn } = await stack();
      await db.query('CREATE TABLE IF NOT EXISTS once_effects (k text NOT NULL)');
      const tries: Array<string | undefined> = [];
      platform.handle('media', 'once', async (job) => {
        const mark = (tx: Executor) => tx.execute(sql`INSERT INTO once_effects (k) VALUES (${job.idempotencyKey})`);
        if (job.data.failInside) {
          // The effect's transaction fails: neither the row nor the key may stay.
          await job.once(async (tx) => {
            await mark(tx);
            throw new Error('effect failed');
          });
        }
        const apply = async (tx: Executor) => {
          await mark(tx);
          return 'applied';
        };
        tries.push(await job.once(apply));
        // A second call in the same run finds the key recorded and applies nothing.
        tries.push(await job.once(apply));
        return null;
      });
      await platform.start(['media']);
      const key = `once-${randomUUID()}`;
      const id = await platform.enqueue('media', 'once', {}, { idempotencyKey: key });
      await jobIn(id, 'completed');
      expect(tries).toEqual(['applied', undefined]);
      const rows = async (k: string) =>
        Number((await db.query('SELECT count(*)::int AS n FROM once_effects WHERE k = $1', [k])).rows[0]?.n);
      expect(await rows(key)).toBe(1);

      const failing = `once-fail-${randomUUID()}`;
      const failed = await platform.enqueue('media', 'once', { failInside: true }, { idempotencyKey: failing });
      await jobIn(failed, 'failed');
      expect(await rows(failing)).toBe(0);
      const recorded = await db.system
        .select()
        .from(processedJobs)
        .where(inArray(processedJobs.idempotencyKey, [failing]));
      expect(recorded).toEqual([]);
    });

    it('completes a job whose key is already processed without running the handler', async () => {
      const { queue, platform, entries, jobIn } = await stack();
      const ran: string[] = [];
      platform.handle('digest', 'weekly', async (job) => {
        ran.push(job.id);
        return 'sent';
      });
      await platform.start(['digest']);
      const key = `digest-${randomUUID()}`;
      await db.system.insert(processedJobs).values({ idempotencyKey: key, queue: 'digest', jobId: 'earlier' });

      const skipped = await platform.enqueue('digest', 'weekly', { week: 1 }, { idempotencyKey: key });
      const done = await jobIn(skipped, 'completed');
      expect(done.result).toEqual({ skipped: 'already processed' });
      // A job arriving with a processed key under another id (its first job long purged) too.
      const again = await queue.enqueue('digest', 'weekly', { week: 1, _key: key });
      expect(again).not.toBe(skipped);
      expect((await jobIn(again, 'completed')).result).toEqual({ skipped: 'already processed' });
      const fresh = await platform.enqueue('digest', 'weekly', { week: 2 }, { idempotencyKey: `${key}-2` });
      expect((await jobIn(fresh, 'completed')).result).toBe('sent');

      expect(ran).toEqual([fresh]);
      const [row] = await db.system.select().from(processedJobs).where(eq(processedJobs.idempotencyKey, key));
      expect(row!.jobId).toBe('earlier');
      expect(entries.filter((e) => e.msg === 'job: already processed; skipping').map((e) => e.jobId)).toEqual([
        skipped,
        again,
      ]);
    });

    it('a dead-lettered job fires job.failed once and logs an error', async () => {
      const { queue, platform, entries, jobIn } = await stack();
      let runs = 0;
      platform.handle('webhooks', 'explode', async () => {
        runs++;
        throw new Error('kaboom');
      });
      platform.handle('webhooks', 'fine', async () => 'ok');
      const failed: [JobInfo, Error][] = [];
      platform.events.on('job.failed', (info, err) => failed.push([info, err]));
      await platform.start(['webhooks']);

      const id = await platform.enqueue('webhooks', 'explode', { url: 'https://x.io' });
      const orphan = await platform.enqueue('webhooks', 'nobody-handles-this', {});
      await jobIn(id, 'failed');
      await jobIn(orphan, 'failed');
      await eventually(() => failed.length >= 2, 'job.failed for both jobs');
      // Nothing more arrives: a later job on the queue completes and the count holds.
      await jobIn(await platform.enqueue('webhooks', 'fine', {}), 'completed');

      expect(runs).toBe(2);
      expect(failed.map(([info]) => info.id).sort()).toEqual([id, orphan].sort());
      const [info, err] = failed.find(([i]) => i.id === id)!;
      expect(info).toMatchObject({ state: 'failed', name: 'explode', attempts: 2, failedReason: 'kaboom' });
      expect(err.message).toBe('kaboom');
      expect(failed.find(([i]) => i.id === orphan)![1].message).toBe('no handler for webhooks:nobody-handles-this');

      const errors = entries.filter((e) => e.level === 50 && e.event === 'job.failed');
      expect(errors.map((e) => e.jobId).sort()).toEqual([id, orphan].sort());
      const line = errors.find((e) => e.jobId === id)!;
      expect(line).toMatchObject({ queue: 'webhooks', name: 'explode', attempts: 2 });
      expect(line.msg).toMatch(/failed for good after 2 attempts: kaboom/);
      expect((line.err as { message: string }).message).toBe('kaboom');
      const retries = entries.filter((e) => e.level === 40 && e.msg === 'job failed; will retry');
      expect(retries.filter((e) => e.jobId === id).map((e) => e.attempt)).toEqual([1]);
      expect((await queue.failed('webhooks', { limit: 10, offset: 0 })).map((j) => j.id).sort()).toEqual(
        [id, orphan].sort(),
      );
    });

    it('detectStuck reports an active job older than its queue timeout', async () => {
      const { platform, entries, jobIn } = await stack();
      const release = gate();
      platform.handle('export', 'build', () => release.promise);
      platform.handle('email', 'slow', () => release.promise);
      const stuckEvents: JobInfo[] = [];
      platform.events.on('job.stuck', (info) => stuckEvents.push(info));
      await platform.start(['export', 'email']);

      const id = await platform.enqueue('export', 'build', {});
      const slowEmail = await platform.enqueue('email', 'slow', {});
      await jobIn(id, 'active');
      await jobIn(slowEmail, 'active');
      try {
        const stuck = await eventually(async () => {
          const list = await platform.detectStuck();
          return list.length > 0 ? list : null;
        }, 'detectStuck to report the export');
        // Only the export: the email is well within its minute.
        expect(stuck.map((j) => [j.id, j.queue, j.state])).toEqual([[id, 'export', 'active']]);
        expect(stuckEvents.at(-1)).toMatchObject({ id, queue: 'export' });
        const warn = entries.filter((e) => e.event === 'job.stuck').at(-1)!;
        expect(warn).toMatchObject({ level: 40, jobId: id, queue: 'export' });
        expect(warn.msg).toMatch(/longer than its 200 ms timeout/);
      } finally {
        release.open();
      }
      await jobIn(id, 'completed');
      expect(await platform.detectStuck()).toEqual([]);
    });

    it('purge drops processed keys past the retention and keeps the recent ones', async () => {
      const { platform } = await stack();
      const old = `old-${randomUUID()}`;
      const recent = `recent-${randomUUID()}`;
      await db.system.insert(processedJobs).values([
        { idempotencyKey: old, queue: 'email', jobId: 'x', processedAt: new Date(Date.now() - 3 * 86_400_000) },
        { idempotencyKey: recent, queue: 'email', jobId: 'y' },
      ]);
      const result = await platform.purge(86_400_000);
      expect(result.keys).toBeGreaterThanOrEqual(1);
      const left = await db.system
        .select({ k: processedJobs.idempotencyKey })
        .from(processedJobs)
        .where(inArray(processedJobs.idempotencyKey, [old, recent]));
      expect(left.map((r) => r.k)).toEqual([recent]);
    });
  });
});
