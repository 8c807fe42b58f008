import { createHash, randomUUID } from 'node:crypto';

/**
 * The queue port: durable jobs on BullMQ (Redis) or pg-boss (the app's own PostgreSQL or
 * PGlite). Both adapters pass test/platform/queue.contract.test.ts.
 *
 * Job ids are UUIDs. An enqueue with an `idempotencyKey` derives its id from the key, so the
 * same key enqueued twice is one job (a retried request, an outbox row delivered again).
 */
export type JobState = 'waiting' | 'active' | 'delayed' | 'completed' | 'failed';

export interface QueueDefinition {
  name: string;
  priority: number;
  attempts: number;
  backoff: { type: 'exponential' | 'fixed'; delayMs: number };
  timeoutMs: number;
}

export interface EnqueueOptions {
  idempotencyKey?: string;
  delayMs?: number;
  /** Tenant the job acts for; its owners and admins may see it through the operations API. */
  tenantId?: string | null;
}

export interface JobInfo {
  id: string;
  queue: string;
  name: string;
  state: JobState;
  data: Record<string, unknown>;
  tenantId: string | null;
  progress: number;
  /** Runs started so far, the current one included. */
  attempts: number;
  maxAttempts: number;
  failedReason: string | null;
  result: unknown;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface RunningJob {
  id: string;
  queue: string;
  name: string;
  data: Record<string, unknown>;
  tenantId: string | null;
  /** 1 on the first run. */
  attempt: number;
  maxAttempts: number;
  /** Aborted when the job's timeout passes or the worker is shutting down hard. */
  signal: AbortSignal;
  progress(percent: number): Promise<void>;
}

/** Thrown by a handler to put the job back for later without spending an attempt (a dependency is down). */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}

export type JobHandler = (job: RunningJob) => Promise<unknown>;

export interface WorkerEvents {
  /** The job will not run again: its last attempt failed. */
  onDeadLetter?(job: JobInfo, err: Error): void;
  onRetry?(job: { id: string; queue: string; attempt: number }, err: Error): void;
}

export type QueueCounts = Record<JobState, number>;

export interface JobQueue {
  readonly kind: 'bullmq' | 'pg-boss';
  /** Creates the queues (idempotent); call before anything else. */
  start(): Promise<void>;
  /**
   * Not from inside a database transaction: work tied to a write goes through the outbox (it
   * commits with the write), and on PGlite an enqueue waiting for the connection a transaction
   * holds would wait forever.
   */
  enqueue(queue: string, name: string, data: Record<string, unknown>, opts?: EnqueueOptions): Promise<string>;
  /** Starts `concurrency` parallel consumers of one queue in this process. */
  work(queue: string, handler: JobHandler, opts: { concurrency: number } & WorkerEvents): Promise<void>;
  /** Upserts a repeatable job under `key` (a cron pattern, UTC). */
  schedule(queue: string, key: string, cron: string, name: string, data: Record<string, unknown>): Promise<void>;
  getJob(id: string): Promise<JobInfo | null>;
  counts(queue: string): Promise<QueueCounts>;
  /** The dead letters: jobs whose last attempt failed, newest first. */
  failed(queue: string, opts: { limit: number; offset: number }): Promise<JobInfo[]>;
  /** Active jobs that started more than `olderThanMs` ago. */
  active(queue: string, opts: { olderThanMs: number }): Promise<JobInfo[]>;
  /** Puts a dead-lettered job back to run again with a fresh set of attempts. False if it is not failed. */
  retry(id: string): Promise<boolean>;
  /** Deletes completed and failed jobs that finished before `olderThanMs` ago; returns how many. */
  purgeFinished(queue: string, olderThanMs: number): Promise<number>;
  /** Stops taking jobs; waits for running ones to finish (or, after `timeoutMs`, hands them back). */
  stopWorkers(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  ping(): Promise<void>;
}

/** A UUID (v4 layout) derived from a key, so the same key always names the same job. */
export function jobIdFor(idempotencyKey?: string): string {
  if (!idempotencyKey) return randomUUID();
  const h = createHash('sha256').update(idempotencyKey).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x40;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export const TENANT_KEY = 'tenantId';

export function tenantOf(data: Record<string, unknown>): string | null {
  const t = data[TENANT_KEY];
  return typeof t === 'string' ? t : null;
}

/** Rejects after `ms` with a timeout error and aborts `controller`; resolves with `work` otherwise. */
export async function withTimeout<T>(work: Promise<T>, ms: number, controller: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`job timed out after ${ms} ms`);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts the queue on first use rather than at boot, so the API comes up (and reports itself
 * unready) while the database or Redis is away. A failed start is tried again next call.
 */
export function startOnFirstUse<Q extends JobQueue>(queue: Q): Q {
  let started: Promise<void> | undefined;
  const ensure = () => {
    started ??= queue.start().catch((err) => {
      started = undefined;
      throw err;
    });
    return started;
  };
  const lazy = [
    'enqueue',
    'work',
    'schedule',
    'getJob',
    'counts',
    'failed',
    'active',
    'retry',
    'purgeFinished',
  ] as const;
  const wrapped = Object.create(queue) as Q;
  for (const name of lazy) {
    const fn = queue[name] as (...args: unknown[]) => Promise<unknown>;
    (wrapped as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      await ensure();
      return fn.apply(queue, args);
    };
  }
  wrapped.start = ensure;
  return wrapped;
}
