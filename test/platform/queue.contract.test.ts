import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type JobInfo,
  type JobQueue,
  jobIdFor,
  type QueueDefinition,
  RetryLaterError,
  type RunningJob,
} from '../../src/platform/queue/index.js';
import { eventually, gate, queueBackends, sleep } from './backends.js';

/**
 * The queue port's contract, run against every adapter: BullMQ on Redis, pg-boss on PGlite and
 * (TEST_DATABASE_URL) on PostgreSQL. Each case has a queue of its own, so cases never see each
 * other's jobs; policies are tiny (pg-boss rounds backoff up to whole seconds).
 */
const def = (name: string, over: Partial<QueueDefinition> = {}): QueueDefinition => ({
  name,
  priority: 1,
  attempts: 1,
  backoff: { type: 'fixed', delayMs: 100 },
  timeoutMs: 15_000,
  ...over,
});

const defs: QueueDefinition[] = [
  def('c-basic', { attempts: 2 }),
  def('c-idem'),
  def('c-fail', { attempts: 3 }),
  def('c-later'),
  def('c-later2', { attempts: 2 }),
  def('c-progress'),
  def('c-timeout', { attempts: 2, timeoutMs: 300 }),
  def('c-counts'),
  def('c-delay'),
  def('c-active'),
  def('c-purge'),
  def('c-stop'),
  def('c-hardstop', { attempts: 2 }),
  def('c-restart'),
  def('c-cron', { attempts: 2 }),
];

const stateOf = async (q: JobQueue, id: string) => (await q.getJob(id))?.state;
const jobIn = (q: JobQueue, id: string, state: JobInfo['state']) =>
  eventually(async () => {
    const j = await q.getJob(id);
    return j?.state === state ? j : null;
  }, `job ${id} to be ${state}`);

describe.each(queueBackends())('queue contract: $name', (backend) => {
  const open: JobQueue[] = [];
  /** A started adapter instance; closed after the case. */
  const fresh = async () => {
    const q = backend.adapter(defs);
    open.push(q);
    await q.start();
    return q;
  };

  beforeAll(() => backend.setup());
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close();
  });
  afterAll(() => backend.teardown());

  it('runs an enqueued job and reports it completed with its result, attempts and timestamps', async () => {
    const q = await fresh();
    const tenantId = randomUUID();
    const seen: RunningJob[] = [];
    await q.work(
      'c-basic',
      async (job) => {
        seen.push(job);
        if (job.name === 'measure') return { value: 3, unit: 'ms' };
        return { greeting: `hello ${job.data.who}` };
      },
      { concurrency: 1 },
    );
    const id = await q.enqueue('c-basic', 'greet', { who: 'ada' }, { tenantId });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const info = await jobIn(q, id, 'completed');
    expect(info).toMatchObject({
      id,
      queue: 'c-basic',
      name: 'greet',
      state: 'completed',
      tenantId,
      attempts: 1,
      maxAttempts: 2,
      failedReason: null,
      result: { greeting: 'hello ada' },
      progress: 100,
    });
    expect(info.data).toMatchObject({ who: 'ada' });
    expect(info.createdAt).toBeInstanceOf(Date);
    expect(info.startedAt).toBeInstanceOf(Date);
    expect(info.finishedAt).toBeInstanceOf(Date);
    expect(info.startedAt!.getTime()).toBeGreaterThanOrEqual(info.createdAt.getTime());
    expect(info.finishedAt!.getTime()).toBeGreaterThanOrEqual(info.startedAt!.getTime());

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ id, queue: 'c-basic', name: 'greet', tenantId, attempt: 1, maxAttempts: 2 });
    expect(seen[0]!.data).toMatchObject({ who: 'ada' });
    expect(seen[0]!.signal.aborted).toBe(false);

    // A result reads back whole, whatever its fields.
    const measured = await q.enqueue('c-basic', 'measure', {});
    expect((await jobIn(q, measured, 'completed')).result).toEqual({ value: 3, unit: 'ms' });
  });

  it('an unknown queue is refused and unknown ids find nothing', async () => {
    const q = await fresh();
    await expect(q.enqueue('c-nope', 'x', {})).rejects.toThrow(/unknown queue/);
    expect(await q.getJob('nope')).toBeNull();
    expect(await q.getJob(randomUUID())).toBeNull();
    expect(await q.retry('nope')).toBe(false);
    expect(await q.retry(randomUUID())).toBe(false);
  });

  it('the same idempotency key is one job, run once', async () => {
    const q = await fresh();
    const key = `idem-${randomUUID()}`;
    const a = await q.enqueue('c-idem', 'once', { n: 1 }, { idempotencyKey: key });
    const b = await q.enqueue('c-idem', 'once', { n: 2 }, { idempotencyKey: key });
    expect(a).toBe(b);
    expect(a).toBe(jobIdFor(key));
    expect((await q.counts('c-idem')).waiting).toBe(1);

    const runs: string[] = [];
    await q.work(
      'c-idem',
      async (job) => {
        runs.push(job.id);
      },
      { concurrency: 2 },
    );
    const done = await jobIn(q, a, 'completed');
    expect(done.data).toMatchObject({ n: 1 });
    // Once more after it finished: still the same job, not a new run.
    expect(await q.enqueue('c-idem', 'once', { n: 3 }, { idempotencyKey: key })).toBe(a);
    const barrier = await q.enqueue('c-idem', 'barrier', {});
    await jobIn(q, barrier, 'completed');
    expect(runs.filter((r) => r === a)).toHaveLength(1);
    expect(await q.counts('c-idem')).toMatchObject({ waiting: 0, delayed: 0, active: 0, completed: 2 });
  });

  it('a failing job is retried with backoff, dead-lettered after its attempts, and retry() replays it', async () => {
    const q = await fresh();
    const starts: { at: number; attempt: number }[] = [];
    const dead: [JobInfo, Error][] = [];
    const retries: { id: string; attempt: number }[] = [];
    let healthy = false;
    await q.work(
      'c-fail',
      async (job) => {
        starts.push({ at: Date.now(), attempt: job.attempt });
        if (!healthy) throw new Error(`boom ${job.attempt}`);
        return 'recovered';
      },
      {
        concurrency: 1,
        onDeadLetter: (info, err) => dead.push([info, err]),
        onRetry: (j, _err) => retries.push({ id: j.id, attempt: j.attempt }),
      },
    );
    const id = await q.enqueue('c-fail', 'flaky', { x: 1 });

    const failed = await jobIn(q, id, 'failed');
    expect(failed).toMatchObject({ id, state: 'failed', attempts: 3, maxAttempts: 3, failedReason: 'boom 3' });
    expect(starts.map((s) => s.attempt)).toEqual([1, 2, 3]);
    for (let i = 1; i < starts.length; i++) {
      // The fixed backoff (100 ms; pg-boss rounds it up to a second) separates the runs.
      expect(starts[i]!.at - starts[i - 1]!.at).toBeGreaterThanOrEqual(90);
    }
    await eventually(() => dead.length > 0, 'onDeadLetter');
    expect(retries).toEqual([
      { id, attempt: 1 },
      { id, attempt: 2 },
    ]);

    const list = await q.failed('c-fail', { limit: 10, offset: 0 });
    expect(list.map((j) => j.id)).toEqual([id]);
    expect(list[0]).toMatchObject({ state: 'failed', failedReason: 'boom 3', attempts: 3, name: 'flaky' });
    expect((await q.counts('c-fail')).failed).toBe(1);

    // Replayed with a fresh set of attempts, it completes.
    healthy = true;
    expect(await q.retry(id)).toBe(true);
    const done = await jobIn(q, id, 'completed');
    expect(done).toMatchObject({ attempts: 1, failedReason: null, result: 'recovered' });
    expect(starts.at(-1)!.attempt).toBe(1);
    expect(await q.failed('c-fail', { limit: 10, offset: 0 })).toEqual([]);
    expect(await q.retry(id)).toBe(false); // completed, not failed
    expect(dead).toHaveLength(1);
    expect(dead[0]![0]).toMatchObject({ id, state: 'failed', attempts: 3, failedReason: 'boom 3' });
    expect(dead[0]![1].message).toBe('boom 3');
  });

  it('RetryLaterError puts the job back without spending an attempt', async () => {
    const q = await fresh();
    const attempts: number[] = [];
    const dead: JobInfo[] = [];
    const retried: number[] = [];
    await q.work(
      'c-later',
      async (job) => {
        attempts.push(job.attempt);
        if (attempts.length === 1) throw new RetryLaterError('dependency down', 1_000);
        if (attempts.length === 2) throw new RetryLaterError('still down', 50);
        return 'finally';
      },
      { concurrency: 1, onDeadLetter: (j) => dead.push(j), onRetry: (j) => retried.push(j.attempt) },
    );
    const id = await q.enqueue('c-later', 'wait-for-it', {});
    // Parked for later (the first back-off is a whole second): delayed, nothing spent.
    const parked = await jobIn(q, id, 'delayed');
    expect(parked.attempts).toBeLessThanOrEqual(parked.maxAttempts);
    expect(parked.failedReason).toBeNull();

    const done = await jobIn(q, id, 'completed');
    expect(attempts).toEqual([1, 1, 1]);
    expect(done).toMatchObject({ maxAttempts: 1, attempts: 1, result: 'finally' });
    expect(dead).toEqual([]);
    expect(retried).toEqual([]);
  });

  it('progress reported by a running job is visible through getJob', async () => {
    const q = await fresh();
    const release = gate();
    await q.work(
      'c-progress',
      async (job) => {
        await job.progress(40);
        await release.promise;
        return { progress: 7 };
      },
      { concurrency: 1 },
    );
    const id = await q.enqueue('c-progress', 'long', {});
    const running = await eventually(async () => {
      const j = await q.getJob(id);
      return j?.state === 'active' && j.progress === 40 ? j : null;
    }, 'progress 40 while active');
    expect(running.startedAt).toBeInstanceOf(Date);
    expect(running.finishedAt).toBeNull();
    release.open();
    const done = await jobIn(q, id, 'completed');
    expect(done).toMatchObject({ progress: 100, result: { progress: 7 } });
  });

  it('a RetryLaterError after a spent attempt keeps the count where it was', async () => {
    const q = await fresh();
    const attempts: number[] = [];
    await q.work(
      'c-later2',
      async (job) => {
        attempts.push(job.attempt);
        if (attempts.length === 1) throw new Error('real failure');
        if (attempts.length === 2) throw new RetryLaterError('dependency down', 50);
        return 'ok';
      },
      { concurrency: 1 },
    );
    const id = await q.enqueue('c-later2', 'mixed', {});
    const done = await jobIn(q, id, 'completed');
    expect(attempts).toEqual([1, 2, 2]);
    expect(done).toMatchObject({ attempts: 2, maxAttempts: 2 });
  });

  it('a run past the queue timeout is aborted and retried', async () => {
    const q = await fresh();
    const signals: AbortSignal[] = [];
    await q.work(
      'c-timeout',
      async (job) => {
        signals.push(job.signal);
        if (job.attempt === 1) {
          // Hangs until aborted; ends then so nothing is left running.
          await new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve(), { once: true }));
          return 'too late';
        }
        return 'in time';
      },
      { concurrency: 1 },
    );
    const id = await q.enqueue('c-timeout', 'slow', {});
    const done = await jobIn(q, id, 'completed');
    expect(done).toMatchObject({ attempts: 2, result: 'in time' });
    expect(signals).toHaveLength(2);
    expect(signals[0]!.aborted).toBe(true);
    expect(String((signals[0]!.reason as Error)?.message)).toMatch(/timed out/);
    expect(signals[1]!.aborted).toBe(false);
  });

  it('counts reflect waiting, active, delayed, completed and failed; failed() is newest first', async () => {
    const q = await fresh();
    expect(await q.counts('c-counts')).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 });
    const later = await q.enqueue('c-counts', 'later', {}, { delayMs: 120_000 });
    const ok = await q.enqueue('c-counts', 'ok', {});
    const bad = await q.enqueue('c-counts', 'bad', {});
    const hold = await q.enqueue('c-counts', 'hold', {});
    expect(await q.counts('c-counts')).toEqual({ waiting: 3, active: 0, delayed: 1, completed: 0, failed: 0 });
    expect(await stateOf(q, later)).toBe('delayed');
    expect(await stateOf(q, ok)).toBe('waiting');

    const release = gate();
    await q.work(
      'c-counts',
      async (job) => {
        if (job.name === 'bad') throw new Error('bad job');
        if (job.name === 'hold') await release.promise;
        return job.name;
      },
      { concurrency: 3 },
    );
    await jobIn(q, ok, 'completed');
    await jobIn(q, bad, 'failed');
    await jobIn(q, hold, 'active');
    expect(await q.counts('c-counts')).toEqual({ waiting: 0, active: 1, delayed: 1, completed: 1, failed: 1 });

    const bad2 = await q.enqueue('c-counts', 'bad', {});
    await jobIn(q, bad2, 'failed');
    release.open();
    await jobIn(q, hold, 'completed');
    expect(await q.counts('c-counts')).toEqual({ waiting: 0, active: 0, delayed: 1, completed: 2, failed: 2 });
    expect((await q.failed('c-counts', { limit: 10, offset: 0 })).map((j) => j.id)).toEqual([bad2, bad]);
    expect((await q.failed('c-counts', { limit: 1, offset: 1 })).map((j) => j.id)).toEqual([bad]);
  });

  it('a delayed job waits, then runs', async () => {
    const q = await fresh();
    const ran: number[] = [];
    await q.work(
      'c-delay',
      async () => {
        ran.push(Date.now());
      },
      { concurrency: 1 },
    );
    const before = Date.now();
    const id = await q.enqueue('c-delay', 'later', {}, { delayMs: 1_000 });
    const waiting = await q.getJob(id);
    expect(waiting?.state).toBe('delayed');
    expect(waiting?.startedAt).toBeNull();
    const done = await jobIn(q, id, 'completed');
    expect(ran).toHaveLength(1);
    expect(ran[0]! - before).toBeGreaterThanOrEqual(950);
    expect(done.startedAt!.getTime() - done.createdAt.getTime()).toBeGreaterThanOrEqual(900);
  });

  it('active() lists a job running longer than olderThanMs', async () => {
    const q = await fresh();
    const release = gate();
    await q.work('c-active', () => release.promise, { concurrency: 1 });
    const id = await q.enqueue('c-active', 'long', {});
    await jobIn(q, id, 'active');
    const old = await eventually(async () => {
      const list = await q.active('c-active', { olderThanMs: 200 });
      return list.length > 0 ? list : null;
    }, 'active() to list the job');
    expect(old.map((j) => j.id)).toEqual([id]);
    expect(old[0]).toMatchObject({ state: 'active', name: 'long', attempts: 1 });
    expect(await q.active('c-active', { olderThanMs: 3_600_000 })).toEqual([]);
    release.open();
    await jobIn(q, id, 'completed');
    expect(await q.active('c-active', { olderThanMs: 0 })).toEqual([]);
  });

  it('purgeFinished removes finished jobs older than the cutoff and nothing else', async () => {
    const q = await fresh();
    const pending = await q.enqueue('c-purge', 'pending', {}, { delayMs: 120_000 });
    await q.work(
      'c-purge',
      async (job) => {
        if (job.name === 'bad') throw new Error('nope');
      },
      { concurrency: 2 },
    );
    const ok = await q.enqueue('c-purge', 'ok', {});
    const bad = await q.enqueue('c-purge', 'bad', {});
    await jobIn(q, ok, 'completed');
    await jobIn(q, bad, 'failed');
    expect(await q.purgeFinished('c-purge', 3_600_000)).toBe(0);
    expect(await stateOf(q, ok)).toBe('completed');

    await sleep(100);
    expect(await q.purgeFinished('c-purge', 50)).toBe(2);
    expect(await q.getJob(ok)).toBeNull();
    expect(await q.getJob(bad)).toBeNull();
    expect(await stateOf(q, pending)).toBe('delayed');
    expect(await q.counts('c-purge')).toEqual({ waiting: 0, active: 0, delayed: 1, completed: 0, failed: 0 });
  });

  it('stopWorkers lets a running job finish before resolving, then takes no more', async () => {
    const q = await fresh();
    const release = gate();
    let finished = false;
    const ran: string[] = [];
    await q.work(
      'c-stop',
      async (job) => {
        ran.push(job.id);
        await release.promise;
        finished = true;
        return 'finished';
      },
      { concurrency: 1 },
    );
    const id = await q.enqueue('c-stop', 'long', {});
    await jobIn(q, id, 'active');

    let stopped = false;
    const stopping = q.stopWorkers(20_000).then(() => {
      stopped = true;
    });
    await sleep(300);
    expect(stopped).toBe(false);
    release.open();
    await stopping;
    expect(finished).toBe(true);
    expect(await stateOf(q, id)).toBe('completed');

    const next = await q.enqueue('c-stop', 'after-stop', {});
    await sleep(500);
    expect(ran).toEqual([id]);
    expect(await stateOf(q, next)).toBe('waiting');
  });

  it('stopWorkers past its deadline aborts the running job and hands it back to run again', async () => {
    const q = await fresh();
    const signals: AbortSignal[] = [];
    await q.work(
      'c-hardstop',
      async (job) => {
        signals.push(job.signal);
        // Ignores the abort: the worker must not wait for it past the deadline.
        await new Promise(() => {});
      },
      { concurrency: 1 },
    );
    const id = await q.enqueue('c-hardstop', 'stubborn', {});
    await jobIn(q, id, 'active');
    await q.stopWorkers(200);
    expect(signals).toHaveLength(1);
    expect(signals[0]!.aborted).toBe(true);
    await q.close();
    open.splice(open.indexOf(q), 1);

    // Handed back without spending an attempt: another instance runs it as attempt 1.
    const next = await fresh();
    const attempts: number[] = [];
    await next.work(
      'c-hardstop',
      async (job) => {
        attempts.push(job.attempt);
        return 'second home';
      },
      { concurrency: 1 },
    );
    const done = await jobIn(next, id, 'completed');
    expect(done).toMatchObject({ result: 'second home', attempts: 1 });
    expect(attempts).toEqual([1]);
  });

  it('jobs survive a restart: enqueued with no worker, run by a new adapter instance', async () => {
    const first = await fresh();
    const key = `restart-${randomUUID()}`;
    const id = await first.enqueue('c-restart', 'durable', { v: 42 }, { idempotencyKey: key });
    expect(await stateOf(first, id)).toBe('waiting');
    await first.close();
    open.splice(open.indexOf(first), 1);

    const second = await fresh();
    expect(await stateOf(second, id)).toBe('waiting');
    const seen: unknown[] = [];
    await second.work(
      'c-restart',
      async (job) => {
        seen.push(job.data.v);
        return 'after restart';
      },
      { concurrency: 1 },
    );
    const done = await jobIn(second, id, 'completed');
    expect(done).toMatchObject({ id, name: 'durable', result: 'after restart', attempts: 1 });
    expect(seen).toEqual([42]);
  });

  it('schedule() registers a cron job (idempotently) whose jobs work(queue) serves', async () => {
    const q = await fresh();
    await q.schedule('c-cron', 'nightly', '0 3 * * *', 'tick', { source: 'cron' });
    await q.schedule('c-cron', 'nightly', '0 4 * * *', 'tick', { source: 'cron' });
    await expect(q.schedule('c-nope', 'x', '* * * * *', 'tick', {})).rejects.toThrow(/unknown queue/);

    const seen: RunningJob[] = [];
    await q.work(
      'c-cron',
      async (job) => {
        seen.push(job);
        return job.name;
      },
      { concurrency: 1 },
    );
    if (q.kind === 'bullmq') {
      // BullMQ keeps the schedule beside the queue and the next run as a delayed job.
      const bull = (q as unknown as { queues: Map<string, import('bullmq').Queue> }).queues.get('c-cron')!;
      const schedulers = await bull.getJobSchedulers();
      expect(schedulers.map((s) => [s.key, s.pattern])).toEqual([['nightly', '0 4 * * *']]);
      expect((await q.counts('c-cron')).delayed).toBe(1);
    } else {
      // pg-boss: the schedule has a queue of its own, `<queue>.cron.<key>`, which work(queue)
      // also consumes; a job arriving there (as the cron would send it) is run and reported
      // under the queue.
      const sub = 'c-cron.cron.nightly';
      const id = await q.enqueue(sub, 'tick', { source: 'cron' });
      const done = await jobIn(q, id, 'completed');
      expect(done).toMatchObject({ queue: 'c-cron', name: 'tick', result: 'tick' });
      expect(seen.map((j) => [j.id, j.queue, j.name])).toEqual([[id, 'c-cron', 'tick']]);
      expect((await q.counts('c-cron')).completed).toBe(1);
    }

    // Another instance (the API process, which registers no schedules) sees the same jobs.
    const other = await fresh();
    expect(await other.counts('c-cron')).toEqual(await q.counts('c-cron'));
    if (q.kind === 'pg-boss') {
      const [job] = seen;
      expect(await other.getJob(job!.id)).toMatchObject({ queue: 'c-cron', state: 'completed' });
      expect(await other.purgeFinished('c-cron', 0)).toBe(1);
      expect((await q.counts('c-cron')).completed).toBe(0);
    }
  });
});
