import { EventEmitter } from 'node:events';
import { eq, lt } from 'drizzle-orm';
import type { Logger } from 'pino';
import { type Database, type Executor, tables } from '../../platform/db/index.js';
import type { EnqueueOptions, JobInfo, JobQueue, RunningJob } from '../../platform/queue/index.js';
import { type QueueName, type QueuePolicy, queueNames, queuePolicies } from './queues.js';

const { processedJobs } = tables;

/** Handlers receive this; `idempotencyKey` is the key the job was enqueued with, if any. */
export type JobContext = RunningJob & {
  idempotencyKey: string | null;
  /**
   * Applies a database effect exactly once: `effect` runs in a transaction that also records
   * the job's key, and does not run at all (resolving undefined) if the key is already
   * recorded. A worker dying mid-way leaves neither, so the retry applies it. Effects outside
   * the database (mail, HTTP) cannot share a transaction and stay at-least-once.
   */
  once<T>(effect: (tx: Executor) => Promise<T>): Promise<T | undefined>;
};
export type Handler = (job: JobContext) => Promise<unknown>;

export interface JobEvents {
  'job.failed': [JobInfo, Error];
  'job.stuck': [JobInfo];
}

const KEY_FIELD = '_key';

/**
 * The job platform over the queue port: handlers registered by queue and job name, the
 * idempotent-consumer check around each, dead-letter alerts, cron schedules and stuck-job
 * reports. Modules register their handlers here; the API (WORKERS=inline) or `npm run worker`
 * starts the consumers.
 */
export function createJobPlatform(deps: {
  db: Database;
  queue: JobQueue;
  log: Logger;
  concurrency: Partial<Record<QueueName, number>>;
  /** The queues' policies (default: queues.ts); tests pass shorter ones. */
  policies?: Record<QueueName, QueuePolicy>;
}) {
  const { db, queue, log } = deps;
  const policies = deps.policies ?? queuePolicies;
  const handlers = new Map<string, Handler>();
  const schedules: { queue: QueueName; key: string; cron: string; name: string }[] = [];
  const events = new EventEmitter<JobEvents>();
  let consuming: QueueName[] = [];

  async function alreadyDone(key: string): Promise<boolean> {
    const rows = await db.system
      .select({ k: processedJobs.idempotencyKey })
      .from(processedJobs)
      .where(eq(processedJobs.idempotencyKey, key))
      .limit(1);
    return rows.length > 0;
  }

  async function dispatch(queueName: QueueName, job: RunningJob) {
    const handler = handlers.get(`${queueName}:${job.name}`);
    if (!handler) throw new Error(`no handler for ${queueName}:${job.name}`);
    const { [KEY_FIELD]: rawKey, ...data } = job.data;
    const key = typeof rawKey === 'string' ? rawKey : null;
    if (key && (await alreadyDone(key))) {
      log.info({ jobId: job.id, queue: queueName, key }, 'job: already processed; skipping');
      return { skipped: 'already processed' };
    }
    const once = <T>(effect: (tx: Executor) => Promise<T>) =>
      db.transaction(async (tx) => {
        if (key) {
          const claimed = await tx
            .insert(processedJobs)
            .values({ idempotencyKey: key, queue: queueName, jobId: job.id })
            .onConflictDoNothing()
            .returning({ k: processedJobs.idempotencyKey });
          if (claimed.length === 0) return undefined;
        }
        return effect(tx);
      });
    const result = await handler({ ...job, data, idempotencyKey: key, once });
    if (key) {
      await db.system
        .insert(processedJobs)
        .values({ idempotencyKey: key, queue: queueName, jobId: job.id })
        .onConflictDoNothing();
    }
    return result ?? null;
  }

  return {
    events,

    handle(queueName: QueueName, name: string, handler: Handler) {
      handlers.set(`${queueName}:${name}`, handler);
    },

    /** Repeats `name` on `queueName` by a cron pattern (UTC); several instances registering it is one schedule. */
    every(queueName: QueueName, key: string, cron: string, name: string) {
      schedules.push({ queue: queueName, key, cron, name });
    },

    async enqueue(
      queueName: QueueName,
      name: string,
      data: Record<string, unknown>,
      opts: EnqueueOptions = {},
    ): Promise<string> {
      const payload = opts.idempotencyKey ? { ...data, [KEY_FIELD]: opts.idempotencyKey } : data;
      return queue.enqueue(queueName, name, payload, opts);
    },

    /** Starts consumers for the given queues (those with at least one handler) and the schedules. */
    async start(queues: readonly QueueName[] = queueNames) {
      for (const s of schedules) await queue.schedule(s.queue, s.key, s.cron, s.name, {});
      consuming = queues.filter((q) => [...handlers.keys()].some((k) => k.startsWith(`${q}:`)));
      for (const q of consuming) {
        await queue.work(q, (job) => dispatch(q, job), {
          concurrency: deps.concurrency[q] ?? policies[q].concurrency,
          onDeadLetter: (info, err) => {
            log.error(
              { event: 'job.failed', jobId: info.id, queue: q, name: info.name, attempts: info.attempts, err },
              `job ${info.id} on ${q} failed for good after ${info.attempts} attempts: ${err.message}`,
            );
            events.emit('job.failed', info, err);
          },
          onRetry: (j, err) =>
            log.warn({ jobId: j.id, queue: q, attempt: j.attempt, err: err.message }, 'job failed; will retry'),
        });
      }
      log.info({ queues: consuming, backend: queue.kind }, 'workers started');
    },

    /** Active jobs past their queue's timeout: reported (log + event); the timeout or lock expiry retries them. */
    async detectStuck(): Promise<JobInfo[]> {
      const stuck: JobInfo[] = [];
      for (const q of queueNames) {
        for (const info of await queue.active(q, { olderThanMs: policies[q].timeoutMs })) {
          stuck.push(info);
          log.warn(
            { event: 'job.stuck', jobId: info.id, queue: q, startedAt: info.startedAt },
            `job ${info.id} on ${q} has been active longer than its ${policies[q].timeoutMs} ms timeout`,
          );
          events.emit('job.stuck', info);
        }
      }
      return stuck;
    },

    /** Drops finished jobs and processed keys older than the retention. */
    async purge(retentionMs: number): Promise<{ jobs: number; keys: number }> {
      let jobs = 0;
      for (const q of queueNames) jobs += await queue.purgeFinished(q, retentionMs);
      const gone = await db.system
        .delete(processedJobs)
        .where(lt(processedJobs.processedAt, new Date(Date.now() - retentionMs)))
        .returning({ k: processedJobs.idempotencyKey });
      return { jobs, keys: gone.length };
    },

    /** Stops taking jobs; running ones get `timeoutMs` to finish, then go back to the queue. */
    async stop(timeoutMs: number) {
      await queue.stopWorkers(timeoutMs);
      consuming = [];
    },

    get consuming() {
      return consuming;
    },
  };
}

export type JobPlatform = ReturnType<typeof createJobPlatform>;
