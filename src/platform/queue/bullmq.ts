import { DelayedError, type Job, Queue, WaitingError, Worker } from 'bullmq';
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

/** Why a running handler was cut short by stopWorkers' deadline; its job goes back to wait. */
class HandedBack extends Error {
  override name = 'HandedBack';
  constructor() {
    super('worker shutting down: job handed back');
  }
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
  /** Aborted when stopWorkers' deadline passes: running handlers are aborted and their jobs handed back. */
  let hardStop = new AbortController();

  /** The Queue objects exist from construction, so the dashboard can list them before first use. */
  function openQueues() {
    for (const def of opts.queues) {
      if (queues.has(def.name)) continue;
      const q = new Queue(def.name, {
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
      });
      // A Queue re-emits its connection's errors; with no listener BullMQ console.errors each
      // one, so a Redis outage printed every reconnect attempt once per queue. Like the
      // connection's and the workers', they surface through the callers and the readiness check.
      q.on('error', () => {});
      queues.set(def.name, q);
    }
  }
  openQueues();

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
      // BullMQ's progress defaults to 0, so a finished job says 100 whatever it last reported.
      progress: mapped === 'completed' ? 100 : typeof job.progress === 'number' ? job.progress : 0,
      // Runs spent, the running one included. attemptsStarted would also count the runs a
      // RetryLaterError handed back, which spend no attempt (and would exceed maxAttempts).
      attempts: mapped === 'active' ? job.attemptsMade + 1 : job.attemptsMade,
      maxAttempts: job.opts.attempts ?? 1,
      failedReason: job.failedReason ?? null,
      result: job.returnvalue ?? null,
      createdAt: new Date(job.timestamp),
      startedAt: job.processedOn ? new Date(job.processedOn) : null,
      finishedAt: job.finishedOn ? new Date(job.finishedOn) : null,
    };
  }

  /**
   * A job and its state, read so that they agree. The state lives apart from the job's hash, so
   * a job finishing between two separate reads would be reported completed without its result
   * or finish time; the state is read before and after the hash and the pair read again if the
   * job moved meanwhile (every move is one atomic script, so an unchanged state is a snapshot).
   */
  async function snapshot(q: Queue, id: string): Promise<{ job: Job; state: string } | null> {
    for (let i = 0; ; i++) {
      const before = await q.getJobState(id);
      if (before === 'unknown') return null;
      const job = await q.getJob(id);
      if (!job) return null;
      const after = await job.getState();
      if (after === before || i >= 4) return { job, state: after };
    }
  }

  async function findJob(id: string): Promise<{ name: string; job: Job; state: string } | null> {
    const found = await Promise.all([...queues].map(async ([name, q]) => ({ name, hit: await snapshot(q, id) })));
    const first = found.find((f) => f.hit);
    return first?.hit ? { name: first.name, ...first.hit } : null;
  }

  return {
    kind: 'bullmq',
    queues,

    async start() {
      openQueues();
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
          // stopWorkers' deadline ends the run at once (the handler may ignore its signal).
          const stop = hardStop.signal;
          let onStop = () => {};
          const handedBack = new Promise<never>((_, reject) => {
            onStop = () => {
              const err = new HandedBack();
              reject(err);
              controller.abort(err);
            };
          });
          handedBack.catch(() => {});
          if (stop.aborted) onStop();
          else stop.addEventListener('abort', onStop, { once: true });
          try {
            const run = handler({
              id: job.id as string,
              queue: name,
              name: job.name,
              data,
              tenantId: tenantOf(data),
              attempt: job.attemptsMade + 1,
              maxAttempts: job.opts.attempts ?? 1,
              signal: controller.signal,
              progress: (p) => job.updateProgress(p),
            });
            return await withTimeout(Promise.race([run, handedBack]), def.timeoutMs, controller);
          } catch (err) {
            if (err instanceof RetryLaterError) {
              // Back to delayed without spending an attempt.
              await job.moveToDelayed(Date.now() + err.delayMs, token);
              throw new DelayedError();
            }
            if (err instanceof HandedBack) {
              // Back to wait without spending an attempt, for another worker to run.
              await job.moveToWait(token);
              throw new WaitingError();
            }
            throw err;
          } finally {
            stop.removeEventListener('abort', onStop);
          }
        },
        {
          // BullMQ duplicates the shared connection for its blocking reads and closes that copy.
          connection,
          prefix: opts.prefix,
          concurrency: w.concurrency,
          lockDuration: opts.lockDurationMs ?? 30_000,
          stalledInterval: opts.stalledIntervalMs ?? 15_000,
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
      return hit ? toInfo(hit.name, hit.job, hit.state) : null;
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
      if (hit?.state !== 'failed') return false;
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
      const closing = Promise.all(workers.splice(0).map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), timeoutMs);
      });
      try {
        // Past the deadline the running handlers are aborted and their jobs moved back to wait
        // (no attempt spent), which lets the graceful close finish. (A second `close(true)` would
        // not: BullMQ returns the close already under way, which waits for the jobs.)
        if ((await Promise.race([closing, late])) === 'late') {
          hardStop.abort();
          await closing;
        }
      } finally {
        clearTimeout(timer);
        hardStop = new AbortController();
      }
    },

    async close() {
      await this.stopWorkers(0);
      await Promise.all([...queues.values()].map((q) => q.close()));
      queues.clear();
      // QUIT waits in the offline queue while Redis is unreachable: then just drop the socket.
      if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect());
      else connection.disconnect();
    },

    async ping() {
      await connection.ping();
    },
  };
}
