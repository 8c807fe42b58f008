import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { type DatabaseKind, databaseKinds } from './db.js';
import { redisModeEnv } from './redis.js';

/** Helpers for the suites over the job platform's HTTP surface (jobs, exports, emails, dashboard). */

export interface QueueMode {
  /** For test titles. */
  name: string;
  backend: 'pg-boss' | 'bullmq';
  kind: DatabaseKind;
}

const lastKind = databaseKinds[databaseKinds.length - 1] as DatabaseKind;

/** pg-boss on every database kind; BullMQ (Redis) once, on PostgreSQL when the suite has it. */
export const queueModes: QueueMode[] = [
  ...databaseKinds.map((kind) => ({ name: `pg-boss on ${kind.name}`, backend: 'pg-boss' as const, kind })),
  { name: `bullmq on ${lastKind.name}`, backend: 'bullmq', kind: lastKind },
];

/**
 * Load shedding off: PGlite runs in the test's thread, and its long synchronous steps (pg-boss
 * creating its schema) on two shared cores can lag the loop past the 1 s default, so the app
 * would shed the suite's own requests (503 overloaded). jobs-health.test.ts covers shedding.
 */
export const NO_SHEDDING = { MAX_EVENT_LOOP_DELAY_MS: '0' } as const;

export interface ModeEnv {
  /** Env for `createTestStack`: a private DATA_DIR, fast polling, no load shedding and, for BullMQ, Redis under its own prefix. */
  env: Record<string, string>;
  /** Drops the Redis keys and the data directory. */
  cleanup(): Promise<void>;
}

/** `label` goes into the Redis key prefix (at most 20 characters, [a-z0-9_-]). */
export async function modeEnv(mode: QueueMode, label: string): Promise<ModeEnv> {
  const redis = mode.backend === 'bullmq' ? await redisModeEnv(label) : undefined;
  const dataDir = await mkdtemp(join(tmpdir(), `quire-${label}-`));
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    QUEUE_POLL_INTERVAL_MS: '50',
    ...NO_SHEDDING,
    ...redis?.env,
  };
  return {
    env,
    async cleanup() {
      await redis?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type LogEntry = Record<string, unknown> & { level: number; msg: string };

/** A pino logger for the container whose lines (parsed) land in `entries`. */
export function captureLog(level: pino.Level = 'info'): { log: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) entries.push(JSON.parse(line) as LogEntry);
      done();
    },
  });
  return { log: pino({ level }, stream), entries };
}

/**
 * Polls `probe` until it returns something other than undefined/false, or fails after
 * `timeoutMs` naming what it waited for and the last value seen.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    last = value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(50);
  }
}

export interface JobDto {
  id: string;
  queue: string;
  name: string;
  state: 'waiting' | 'active' | 'delayed' | 'completed' | 'failed';
  tenantId: string | null;
  data: Record<string, unknown>;
  progress: number;
  attempts: number;
  maxAttempts: number;
  failedReason: string | null;
  result: unknown;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Polls GET /api/v1/jobs/:id (as `headers`) until the job is in one of `states`; returns it. */
export async function waitForJob(
  app: FastifyInstance,
  headers: Record<string, string>,
  id: string,
  states: JobDto['state'][],
  timeoutMs = 20_000,
): Promise<JobDto> {
  let seen = 'nothing';
  return waitFor(
    `job ${id} to be ${states.join(' or ')}`,
    async () => {
      const res = await app.inject({ method: 'GET', url: `/api/v1/jobs/${id}`, headers });
      seen = `${res.statusCode} ${res.body.slice(0, 300)}`;
      if (res.statusCode !== 200) return undefined;
      const job = res.json().data as JobDto;
      return states.includes(job.state) ? job : undefined;
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last answer: ${seen}`);
  });
}
