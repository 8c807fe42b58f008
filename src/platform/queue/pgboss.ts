import PgBoss from 'pg-boss';
import {
  type EnqueueOptions,
  type JobHandler,
  type JobInfo,
  type JobQueue,
  type JobState,
  jobIdFor,
  type QueueDefinition,
  RetryLaterError,
  TENANT_KEY,
  tenantOf,
  withTimeout,
} from './index.js';

/** How pg-boss reaches the database: its own small pool (PostgreSQL) or PGlite's one connection. */
export interface SqlRunner {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface PgBossOptions {
  /** The connection pg-boss runs its SQL on: the app's pool, or PGlite's one connection. */
  db: SqlRunner;
  queues: QueueDefinition[];
  retentionMs: number;
  /** How long an idle consumer sleeps before looking again (a local enqueue wakes it at once). */
  pollIntervalMs: number;
  schema?: string;
  maintenanceIntervalSeconds?: number;
}

interface BossJob {
  id: string;
  name: string;
  data: Record<string, unknown> | null;
  state: string;
  retryCount: number;
  retryLimit: number;
  output: Record<string, unknown> | null;
  createdOn: Date;
  startedOn: Date | null;
  completedOn: Date | null;
  startAfter: Date;
}

interface LiveRun {
  queue: string;
  id: string;
  handedBack: boolean;
  handBack(): void;
}

/** A pg-boss job row as the port's JobInfo. */
function toInfo(job: BossJob): JobInfo {
  const data = job.data ?? {};
  const output = job.output ?? {};
  let state: JobState;
  if (job.state === 'active') state = 'active';
  else if (job.state === 'completed') state = 'completed';
  else if (job.state === 'failed' || job.state === 'cancelled') state = 'failed';
  else state = new Date(job.startAfter).getTime() > Date.now() || job.state === 'retry' ? 'delayed' : 'waiting';
  // A handler's failure is `{ message }`; pg-boss's own expiry writes `{ value: { message } }`.
  const reason = (typeof output.value === 'object' && output.value !== null ? output.value : output) as {
    message?: unknown;
  };
  const message =
    typeof output.message === 'string' ? output.message : typeof reason.message === 'string' ? reason.message : null;
  // A completed job's output is its result, which may well have a `progress` field of its own.
  const progress = state === 'completed' ? 100 : typeof output.progress === 'number' ? output.progress : 0;
  return {
    id: job.id,
    queue: job.name.split('.cron.')[0] ?? job.name,
    name: typeof data.__name === 'string' ? data.__name : job.name,
    state,
    data: stripName(data),
    tenantId: tenantOf(data),
    progress,
    attempts: job.startedOn ? job.retryCount + 1 : job.retryCount,
    maxAttempts: job.retryLimit + 1,
    failedReason: state === 'failed' ? (message ?? 'failed') : null,
    result: state === 'completed' ? (output.value ?? null) : null,
    createdAt: new Date(job.createdOn),
    startedAt: job.startedOn ? new Date(job.startedOn) : null,
    finishedAt: job.completedOn ? new Date(job.completedOn) : null,
  };
}

const stripName = ({ __name: _, ...rest }: Record<string, unknown>) => rest;

/** The same row shape pg-boss's getJobById returns, for the queries it has no API for. */
const JOB_COLUMNS = `id, name, data, state, retry_count as "retryCount", retry_limit as "retryLimit", output,
  created_on as "createdOn", started_on as "startedOn", completed_on as "completedOn", start_after as "startAfter"`;

/**
 * pg-boss on the app's own database. pg-boss has one queue per name and no job names, so a
 * job's name travels in its data (`__name`). Consumers are a fetch loop rather than
 * `boss.work()`: it fetches as many jobs as it has free slots, and an enqueue in this process
 * wakes it, so throughput is not bound by the polling interval.
 */
export function createPgBossQueue(opts: PgBossOptions): JobQueue {
  const schema = opts.schema ?? 'pgboss';
  const defs = new Map(opts.queues.map((q) => [q.name, q]));
  const retentionSeconds = Math.ceil(opts.retentionMs / 1000);
  const boss = new PgBoss({
    db: opts.db,
    schema,
    supervise: true,
    schedule: true,
    migrate: true,
    // Maintenance fails expired jobs (a worker died mid-run) so they retry: every 30 s rather
    // than pg-boss's 2 minutes, so such a job waits at most its timeout plus half a minute.
    maintenanceIntervalSeconds: opts.maintenanceIntervalSeconds ?? 30,
    // Failed jobs are the dead-letter list: keep them as long as finished jobs are kept.
    archiveFailedAfterSeconds: retentionSeconds,
    deleteAfterSeconds: retentionSeconds,
  } as PgBoss.ConstructorOptions);
  boss.on('error', () => {});
  const sql = (text: string, values: unknown[]) => opts.db.executeSql(text, values);

  const wakers = new Map<string, Set<() => void>>();
  const cronQueues = new Map<string, Set<string>>();
  /**
   * A queue's own name and its schedules' queues, for the queries over "this queue". Read from
   * pg-boss's queue table rather than this instance's schedule() calls: the API process, which
   * registers no schedules, must count, list and purge the scheduled jobs too.
   */
  const family = async (queue: string): Promise<string[]> => {
    const { rows } = await sql(
      `SELECT name FROM ${schema}.queue WHERE name = $1 OR starts_with(name, $1 || '.cron.') ORDER BY name`,
      [queue],
    );
    return [queue, ...rows.map((r) => String(r.name)).filter((n) => n !== queue)];
  };
  let stopping = false;
  let started = false;
  const loops: Promise<void>[] = [];
  const running = new Set<Promise<unknown>>();
  /** Handlers still running (not yet settled), for stopWorkers to hand back at its deadline. */
  const live = new Set<LiveRun>();

  function wake(queue: string) {
    for (const w of wakers.get(queue) ?? []) w();
  }

  async function findRow(id: string, table: 'job' | 'archive'): Promise<BossJob | null> {
    const { rows } = await sql(`SELECT ${JOB_COLUMNS} FROM ${schema}.${table} WHERE id = $1::uuid`, [id]);
    return (rows[0] as unknown as BossJob | undefined) ?? null;
  }

  /** Back to the queue without spending an attempt (a RetryLaterError, or a hand-back at shutdown). */
  async function putBack(queue: string, id: string, state: 'retry' | 'created', delayMs: number) {
    // The next fetch counts a retry only when started_on is set, so the count is undone here in
    // the same statement.
    await sql(
      `UPDATE ${schema}.job SET state = $4::${schema}.job_state,
          start_after = now() + $3::int * interval '1 millisecond',
          retry_count = greatest(retry_count - 1, 0),
          started_on = CASE WHEN retry_count = 0 THEN NULL ELSE started_on END
        WHERE name = $1 AND id = $2::uuid AND state = 'active'`,
      [queue, id, Math.round(delayMs), state],
    );
  }

  async function runOne(queue: string, def: QueueDefinition, job: BossJob, handler: JobHandler, w: WorkOpts) {
    const controller = new AbortController();
    const data = job.data ?? {};
    const attempt = job.retryCount + 1;
    // A schedule's job (`<queue>.cron.<key>`) belongs to the queue, as getJob reports it.
    const owner = queue.split('.cron.')[0] ?? queue;
    // stopWorkers' deadline ends the run at once (the handler may ignore its signal).
    const entry: LiveRun = { queue, id: job.id, handedBack: false, handBack: () => {} };
    const handedBack = new Promise<never>((_, reject) => {
      entry.handBack = () => {
        entry.handedBack = true;
        const err = new Error('worker shutting down: job handed back');
        reject(err);
        controller.abort(err);
      };
    });
    handedBack.catch(() => {});
    live.add(entry);
    let outcome: { ok: true; result: unknown } | { ok: false; error: Error };
    try {
      const run = handler({
        id: job.id,
        queue: owner,
        name: typeof data.__name === 'string' ? data.__name : queue,
        data: stripName(data),
        tenantId: tenantOf(data),
        attempt,
        maxAttempts: job.retryLimit + 1,
        signal: controller.signal,
        progress: async (p) => {
          await sql(
            `UPDATE ${schema}.job SET output = jsonb_build_object('progress', $3::int)
              WHERE name = $1 AND id = $2::uuid AND state = 'active'`,
            [queue, job.id, Math.round(p)],
          );
        },
      });
      outcome = { ok: true, result: await withTimeout(Promise.race([run, handedBack]), def.timeoutMs, controller) };
    } catch (err) {
      outcome = { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
    } finally {
      live.delete(entry);
    }
    // Handed back by stopWorkers: the row is the queue's again.
    if (entry.handedBack) return;
    if (outcome.ok) {
      const { result } = outcome;
      // Always wrapped, so a result that has a `value` field of its own reads back whole.
      if (result === undefined || result === null) await completeBatched(queue, job.id);
      else await boss.complete(queue, job.id, { value: result });
      return;
    }
    const { error } = outcome;
    if (error instanceof RetryLaterError) {
      await putBack(queue, job.id, 'retry', error.delayMs);
      return;
    }
    await boss.fail(queue, job.id, { message: error.message });
    if (attempt >= job.retryLimit + 1) {
      const row = await findRow(job.id, 'job');
      if (row) w.onDeadLetter?.(toInfo(row), error);
    } else {
      w.onRetry?.({ id: job.id, queue: owner, attempt }, error);
    }
  }

  type WorkOpts = Parameters<JobQueue['work']>[2];

  /**
   * Jobs finishing without a result in the same tick are completed in one statement (pg-boss
   * takes a list of ids): one round trip for many jobs when a queue is busy.
   */
  const pendingCompletes = new Map<string, { ids: string[]; done: Promise<void> }>();
  function completeBatched(queue: string, id: string): Promise<void> {
    const pending = pendingCompletes.get(queue);
    if (pending) {
      pending.ids.push(id);
      return pending.done;
    }
    const batch = { ids: [id], done: Promise.resolve() };
    batch.done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      pendingCompletes.delete(queue);
      await boss.complete(queue, batch.ids);
    });
    pendingCompletes.set(queue, batch);
    return batch.done;
  }

  /**
   * One consumer loop per queue: fetch as many jobs as there are free slots, run them, and
   * fetch again once half the slots are free (not on every completion: one fetch feeds many
   * jobs). Idle, it sleeps for the poll interval or until a local enqueue wakes it.
   */
  async function consume(queue: string, def: QueueDefinition, handler: JobHandler, w: WorkOpts) {
    let inFlight = 0;
    const refillAt = Math.max(0, Math.floor(w.concurrency / 2));
    let onSlot: (() => void) | undefined;
    let onWork: (() => void) | undefined;
    const sleep = (ms: number, wakeOn: 'slot' | 'work') =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          onSlot = undefined;
          onWork = undefined;
          resolve();
        }
        if (wakeOn === 'slot') onSlot = done;
        // A local enqueue or stopWorkers wakes an idle loop.
        onWork = done;
      });
    const waker = () => onWork?.();
    const set = wakers.get(queue) ?? new Set();
    set.add(waker);
    wakers.set(queue, set);
    try {
      while (!stopping) {
        if (inFlight > refillAt) {
          await sleep(1_000, 'slot');
          continue;
        }
        let jobs: BossJob[] = [];
        try {
          jobs = (await boss.fetch(queue, {
            batchSize: w.concurrency - inFlight,
            includeMetadata: true,
          })) as unknown as BossJob[];
        } catch {
          jobs = [];
        }
        for (const job of jobs) {
          inFlight++;
          const p = runOne(queue, def, job, handler, w)
            .catch(() => {})
            .finally(() => {
              inFlight--;
              running.delete(p);
              if (inFlight <= refillAt) onSlot?.();
            });
          running.add(p);
        }
        if (stopping) break;
        if (jobs.length === 0) await sleep(opts.pollIntervalMs, 'work');
      }
    } finally {
      set.delete(waker);
    }
  }

  return {
    kind: 'pg-boss',

    async start() {
      await boss.start();
      started = true;
      for (const def of opts.queues) {
        const options = {
          name: def.name,
          retryLimit: def.attempts - 1,
          retryDelay: Math.max(1, Math.round(def.backoff.delayMs / 1000)),
          retryBackoff: def.backoff.type === 'exponential',
          // A job active past its timeout (its worker died) is failed and, attempts left, retried.
          expireInSeconds: Math.ceil(def.timeoutMs / 1000) + 5,
          retentionMinutes: Math.ceil(retentionSeconds / 60),
        };
        if (await boss.getQueue(def.name)) await boss.updateQueue(def.name, options);
        else await boss.createQueue(def.name, options);
      }
    },

    async enqueue(queue, name, data, o: EnqueueOptions = {}) {
      const def = defs.get(queue);
      if (!def) throw new Error(`unknown queue ${queue}`);
      const id = jobIdFor(o.idempotencyKey);
      const payload: Record<string, unknown> = { ...data, __name: name };
      if (o.tenantId) payload[TENANT_KEY] = o.tenantId;
      // An existing id is a no-op (ON CONFLICT DO NOTHING): the same key is the same job.
      await boss.send(queue, payload, {
        id,
        priority: 100 - def.priority,
        ...(o.delayMs ? { startAfter: new Date(Date.now() + o.delayMs) } : {}),
      });
      if (!o.delayMs) wake(queue);
      return id;
    },

    async work(queue, handler, w) {
      const def = defs.get(queue);
      if (!def) throw new Error(`unknown queue ${queue}`);
      stopping = false;
      loops.push(consume(queue, def, handler, w));
      for (const sub of cronQueues.get(queue) ?? []) {
        loops.push(consume(sub, { ...def, name: sub }, handler, { ...w, concurrency: 1 }));
      }
    },

    async schedule(queue, key, cron, name, data) {
      const def = defs.get(queue);
      if (!def) throw new Error(`unknown queue ${queue}`);
      // pg-boss keeps one schedule per queue, so each schedule gets a queue of its own
      // (<queue>.cron.<key>) that the queue's consumers also serve.
      const sub = `${queue}.cron.${key}`;
      const options = { name: sub, retryLimit: def.attempts - 1, expireInSeconds: Math.ceil(def.timeoutMs / 1000) + 5 };
      if (await boss.getQueue(sub)) await boss.updateQueue(sub, options);
      else await boss.createQueue(sub, options);
      defs.set(sub, { ...def, name: sub });
      const subs = cronQueues.get(queue) ?? new Set();
      subs.add(sub);
      cronQueues.set(queue, subs);
      await boss.schedule(sub, cron, { ...data, __name: name }, { tz: 'UTC' });
    },

    async getJob(id) {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
      const row = (await findRow(id, 'job')) ?? (await findRow(id, 'archive'));
      return row ? toInfo(row) : null;
    },

    async counts(queue) {
      const { rows } = await sql(
        `SELECT CASE
             WHEN state IN ('created', 'retry') AND (state = 'retry' OR start_after > now()) THEN 'delayed'
             WHEN state = 'created' THEN 'waiting'
             WHEN state = 'cancelled' THEN 'failed'
             ELSE state::text END AS state, count(*)::int AS n
           FROM ${schema}.job WHERE name = ANY($1::text[]) GROUP BY 1`,
        [await family(queue)],
      );
      const counts = { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 };
      for (const r of rows) counts[r.state as JobState] += Number(r.n);
      return counts;
    },

    async failed(queue, { limit, offset }) {
      const { rows } = await sql(
        `SELECT ${JOB_COLUMNS} FROM ${schema}.job WHERE name = ANY($1::text[]) AND state = 'failed'
          ORDER BY completed_on DESC, id LIMIT $2 OFFSET $3`,
        [await family(queue), limit, offset],
      );
      return rows.map((r) => toInfo(r as unknown as BossJob));
    },

    async active(queue, { olderThanMs }) {
      const { rows } = await sql(
        `SELECT ${JOB_COLUMNS} FROM ${schema}.job WHERE name = ANY($1::text[]) AND state = 'active'
            AND started_on < now() - $2::int * interval '1 millisecond'`,
        [await family(queue), olderThanMs],
      );
      return rows.map((r) => toInfo(r as unknown as BossJob));
    },

    async retry(id) {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return false;
      // A fresh set of attempts, in one statement: back to created with the counter reset.
      const { rows } = await sql(
        `UPDATE ${schema}.job SET state = 'created', retry_count = 0, started_on = NULL, completed_on = NULL,
            output = NULL, start_after = now()
          WHERE id = $1::uuid AND state = 'failed' RETURNING name`,
        [id],
      );
      const name = rows[0]?.name;
      // The consumer of the job's own pg-boss queue (a schedule's sub-queue has its own).
      if (typeof name === 'string') wake(name);
      return rows.length > 0;
    },

    async purgeFinished(queue, olderThanMs) {
      const { rows } = await sql(
        `WITH gone AS (
           DELETE FROM ${schema}.job WHERE name = ANY($1::text[]) AND state IN ('completed', 'failed', 'cancelled')
              AND completed_on < now() - $2::bigint * interval '1 millisecond' RETURNING 1
         ) SELECT count(*)::int AS n FROM gone`,
        [await family(queue), olderThanMs],
      );
      return Number(rows[0]?.n ?? 0);
    },

    async stopWorkers(timeoutMs) {
      stopping = true;
      for (const set of wakers.values()) for (const w of set) w();
      await Promise.all(loops.splice(0));
      // Running jobs get until the deadline. Then they are aborted and handed back at once
      // (no attempt spent) rather than left active until pg-boss expires them.
      const settled = Promise.allSettled([...running]).then(() => 'done' as const);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), timeoutMs);
      });
      try {
        if ((await Promise.race([settled, late])) === 'late') {
          const left = [...live];
          for (const run of left) run.handBack();
          await Promise.all(left.map((run) => putBack(run.queue, run.id, 'created', 0).catch(() => {})));
          await settled;
        }
      } finally {
        clearTimeout(timer);
      }
    },

    async close() {
      await this.stopWorkers(0);
      // The connection is the app's; the database port closes it.
      if (started) await boss.stop({ graceful: false, wait: true, close: false } as PgBoss.StopOptions);
    },

    async ping() {
      await sql('SELECT 1', []);
    },
  };
}
