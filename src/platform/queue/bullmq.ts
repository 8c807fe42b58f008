import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  type EnqueueOptions,
  type JobHandler,
  type JobInfo,
  type JobQueue,
  type JobState,
  jobIdFor,
  type QueueCounts,
  type QueueDefinition,
  RetryLaterError,
  TENANT_KEY,
  tenantOf,
  withTimeout,
} from './index.js';

export interface BullmqOptions {
  redisUrl: string;
  /** Key prefix; BullMQ adds `:<queue>:…`. */
  prefix: string;
  queues: QueueDefinition[];
  /** Completed jobs are kept this long (their ids keep deduplicating enqueues meanwhile). */
  retentionMs: number;
  /** A worker that stops renewing its lock for this long has died; its job goes back to wait. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

const STATES: Record<string, JobState> = {
  waiting: 'waiting',
  prioritized: 'waiting',
  'waiting-children': 'waiting',
  active: 'active',
  delayed: 'delayed',
  completed: 'completed',
  failed: 'failed',
};

/** BullMQ with one Queue per name on a shared connection; Workers get their own (blocking) ones. */
export function createBullmqQueue(opts: BullmqOptions): JobQueue & { queues: Map<string, Queue> } {
  // Commands wait out a Redis restart instead of failing (BullMQ's production guidance).
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, enableReadyCheck: true });
  connection.on('error', () => {});
  const defs = new Map(opts.queues.map((q) => [q.name, q]));
  const queues = new Map<string, Queue>();
  const workers: Worker[] = [];

  function queue(name: string): Queue {
    const q = queues.get(name);
    if (!q) throw new Error(`unknown queue ${name}`);
    return q;
  }

  async function toInfo(queueName: string, job: Job, state?: string): Promise<JobInfo | null> {
    const raw = state ?? (await job.getState());
    const mapped = STATES[raw];
    if (!mapped) return null;
    const data = (job.data ?? {}) as Record<string, unknown>;
    return {
      id: job.id as string,
      queue: queueName,
      name: job.name,
      state: mapped,
      data,
      tenantId: tenantOf(data),
      progress: typeof job.progress === 'number' ? job.progress : mapped === 'completed' ? 100 : 0,
      attempts: job.attemptsStarted ?? job.attemptsMade,
      maxAttempts: job.opts.attempts ?? 1,
      failedReason: job.failedReason ?? null,
      result: job.returnvalue ?? null,
      createdAt: new Date(job.timestamp),
      startedAt: job.processedOn ? new Date(job.processedOn) : null,
      finishedAt: job.finishedOn ? new Date(job.finishedOn) : null,
    };
  }

  async function findJob(id: string): Promise<{ name: string; job: Job } | null> {
    const found = await Promise.all([...queues].map(async ([name, q]) => ({ name, job: await q.getJob(id) })));
    const hit = found.find((f) => f.job);
    return hit?.job ? { name: hit.name, job: hit.job } : null;
  }

  return {
    kind: 'bullmq',
    queues,

    async start() {
      for (const def of opts.queues) {
        if (queues.has(def.name)) continue;
        queues.set(
          def.name,
          new Queue(def.name, {
            connection,
            prefix: opts.prefix,
            defaultJobOptions: {
              attempts: def.attempts,
              backoff: { type: def.backoff.type, delay: def.backoff.delayMs },
              priority: def.priority,
              removeOnComplete: { age: Math.ceil(opts.retentionMs / 1000) },
              // Dead letters stay until an operator retries them or maintenance purges them.
              removeOnFail: false,
            },
          }),
        );
      }
      await connection.ping();
    },

    async enqueue(name: string, jobName: string, data: Record<string, unknown>, o: EnqueueOptions = {}) {
      const id = jobIdFor(o.idempotencyKey);
      const payload = o.tenantId ? { ...data, [TENANT_KEY]: o.tenantId } : data;
      await queue(name).add(jobName, payload, { jobId: id, delay: o.delayMs });
      return id;
    },

    async work(name: string, handler: JobHandler, w) {
      const def = defs.get(name);
      if (!def) throw new Error(`unknown queue ${name}`);
      const worker = new Worker(
        name,
        async (job, token) => {
          const controller = new AbortController();
          const data = (job.data ?? {}) as Record<string, unknown>;
          try {
            return await withTimeout(
              handler({
                id: job.id as string,
                queue: name,
                name: job.name,
                data,
                tenantId: tenantOf(data),
                attempt: job.attemptsMade + 1,
                maxAttempts: job.opts.attempts ?? 1,
                signal: controller.signal,
                progress: (p) => job.updateProgress(p),
              }),
              def.timeoutMs,
              controller,
            );
          } catch (err) {
            if (err instanceof RetryLaterError) {
              // Back to delayed without spending an attempt.
              await job.moveToDelayed(Date.now() + err.delayMs, token);
              throw new DelayedError();
            }
            throw err;
          }
        },
        {
          // BullMQ duplicates the shared connection for its blocking reads and closes that copy.
          connection,
          prefix: opts.prefix,
          concurrency: w.concurrency,
          lockDuration: opts.lockDurationMs ?? 30_000,
          stalledInterval: opts.stalledIntervalMs ?? 30_000,
          maxStalledCount: 2,
        },
      );
      worker.on('error', () => {});
      worker.on('failed', (job, err) => {
        if (!job || err instanceof DelayedError) return;
        const attempts = job.opts.attempts ?? 1;
        if (job.attemptsMade >= attempts) {
          void toInfo(name, job, 'failed').then((info) => info && w.onDeadLetter?.(info, err));
        } else {
          w.onRetry?.({ id: job.id as string, queue: name, attempt: job.attemptsMade }, err);
        }
      });
      workers.push(worker);
      await worker.waitUntilReady();
    },

    async schedule(name, key, cron, jobName, data) {
      await queue(name).upsertJobScheduler(key, { pattern: cron, tz: 'UTC' }, { name: jobName, data });
    },

    async getJob(id) {
      const hit = await findJob(id);
      return hit ? toInfo(hit.name, hit.job) : null;
    },

    async counts(name) {
      const c = await queue(name).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
      return {
        waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        completed: c.completed ?? 0,
        failed: c.failed ?? 0,
      } satisfies QueueCounts;
    },

    async failed(name, { limit, offset }) {
      const jobs = await queue(name).getFailed(offset, offset + limit - 1);
      const infos = await Promise.all(jobs.map((j) => toInfo(name, j, 'failed')));
      return infos.filter((i): i is JobInfo => i !== null);
    },

    async active(name, { olderThanMs }) {
      const cutoff = Date.now() - olderThanMs;
      const jobs = await queue(name).getActive();
      const old = jobs.filter((j) => j.processedOn && j.processedOn < cutoff);
      const infos = await Promise.all(old.map((j) => toInfo(name, j, 'active')));
      return infos.filter((i): i is JobInfo => i !== null);
    },

    async retry(id) {
      const hit = await findJob(id);
      if (!hit || (await hit.job.getState()) !== 'failed') return false;
      await hit.job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    },

    async purgeFinished(name, olderThanMs) {
      const q = queue(name);
      const done = await q.clean(olderThanMs, 10_000, 'completed');
      const failed = await q.clean(olderThanMs, 10_000, 'failed');
      return done.length + failed.length;
    },

    async stopWorkers(timeoutMs) {
      const closing = workers.splice(0).map(async (w) => {
        let timer: NodeJS.Timeout | undefined;
        const graceful = w.close();
        const late = new Promise<'late'>((r) => {
          timer = setTimeout(() => r('late'), timeoutMs);
        });
        // Past the deadline the running job is abandoned: its lock lapses and another worker takes it.
        if ((await Promise.race([graceful, late])) === 'late') await w.close(true);
        clearTimeout(timer);
      });
      await Promise.all(closing);
    },

    async close() {
      await this.stopWorkers(0);
      await Promise.all([...queues.values()].map((q) => q.close()));
      queues.clear();
      await connection.quit().catch(() => connection.disconnect());
    },

    async ping() {
      await connection.ping();
    },
  };
}
