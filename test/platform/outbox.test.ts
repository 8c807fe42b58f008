import { randomUUID } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOutboxRelay, type OutboxRelay, type OutboxWork, recordWork } from '../../src/modules/jobs/outbox.js';
import { createJobPlatform, type JobPlatform } from '../../src/modules/jobs/platform.js';
import { type QueueName, queueNames, queuePolicies } from '../../src/modules/jobs/queues.js';
import type { Database } from '../../src/platform/db/index.js';
import { outbox, processedJobs } from '../../src/platform/db/schema.js';
import { type JobQueue, jobIdFor, type QueueDefinition } from '../../src/platform/queue/index.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { bullmqBackend, eventually, pgbossBackend, type QueueBackend, sleep } from './backends.js';

/**
 * The transactional outbox and its relay, on PGlite and PostgreSQL, delivering to pg-boss on the
 * same database and to BullMQ: work commits with its transaction or not at all, a relay that dies
 * between enqueue and mark leaves its rows to be delivered again, and a second delivery is still
 * one job and one effect.
 */
const log = pino({ level: 'silent' });

/** The production queue names with tiny policies. */
const defs: QueueDefinition[] = queueNames.map((name) => ({
  name,
  priority: queuePolicies[name].priority,
  attempts: 2,
  backoff: { type: 'fixed', delayMs: 100 },
  timeoutMs: 15_000,
}));

/** The SQLSTATE of a driver error, wherever Drizzle put it. */
function pgCode(err: unknown): string | undefined {
  for (let cur = err as { code?: unknown; cause?: unknown } | undefined; cur; cur = cur.cause as typeof cur) {
    if (typeof cur.code === 'string' && /^[0-9A-Z]{5}$/.test(cur.code)) return cur.code;
  }
  return undefined;
}
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

const work = (queue: QueueName, over: Partial<OutboxWork> = {}): OutboxWork => ({
  queue,
  name: 'deliver',
  payload: { n: Math.random() },
  idempotencyKey: `ob-${randomUUID()}`,
  ...over,
});

describe.each(databaseKinds)('outbox on $name', (kind) => {
  let tdb: TestDatabase;
  let db: Database;
  const rowsFor = (keys: string[]) => db.system.select().from(outbox).where(inArray(outbox.idempotencyKey, keys));
  const commit = (items: OutboxWork[]) =>
    db.transaction(async (tx) => {
      for (const w of items) await recordWork(tx, w);
    });

  beforeAll(async () => {
    tdb = await kind.create();
    db = tdb.db;
  });
  afterAll(async () => {
    await tdb?.drop();
  });
  // Relays claim every pending row: each case starts from an empty outbox.
  beforeEach(async () => {
    await db.system.delete(outbox);
  });

  it('work recorded in a transaction that rolls back is not recorded', async () => {
    const dropped = work('email');
    const kept = work('email', { tenantId: randomUUID() });
    const err = await failure(
      db.transaction(async (tx) => {
        await recordWork(tx, dropped);
        throw new Error('the write failed');
      }),
    );
    expect((err as Error).message).toBe('the write failed');
    await commit([kept]);

    expect(await rowsFor([dropped.idempotencyKey])).toEqual([]);
    const [row] = await rowsFor([kept.idempotencyKey]);
    expect(row).toMatchObject({
      queue: 'email',
      name: 'deliver',
      payload: kept.payload,
      tenantId: kept.tenantId,
      dispatchedAt: null,
      claimedUntil: null,
      attempts: 0,
    });
    // A key used twice is a bug worth failing on.
    expect(pgCode(await failure(commit([work('email', { idempotencyKey: kept.idempotencyKey })])))).toBe('23505');
  });

  it('under the tenant role, work is recorded for the own tenant only, and none is read back', async () => {
    const tenantA = randomUUID();
    const tenantB = randomUUID();
    const ctx = { tenantId: tenantA, userId: randomUUID() };
    const own = work('email', { tenantId: tenantA });
    await db.withTenant(ctx, (tx) => recordWork(tx, own));
    expect((await rowsFor([own.idempotencyKey]))[0]?.tenantId).toBe(tenantA);

    const foreign = work('email', { tenantId: tenantB });
    expect(pgCode(await failure(db.withTenant(ctx, (tx) => recordWork(tx, foreign))))).toBe('42501');
    const none = work('email', { tenantId: null });
    expect(pgCode(await failure(db.withTenant(ctx, (tx) => recordWork(tx, none))))).toBe('42501');
    expect(await rowsFor([foreign.idempotencyKey, none.idempotencyKey])).toEqual([]);
    expect(pgCode(await failure(db.withTenant(ctx, (tx) => tx.select().from(outbox))))).toBe('42501');
  });

  const queueKinds: QueueBackend[] = [pgbossBackend(kind, () => db), bullmqBackend()];

  describe.each(queueKinds)('relaying to $name', (backend) => {
    const opened: { queue: JobQueue; platform: JobPlatform; relays: OutboxRelay[] }[] = [];
    beforeAll(() => backend.setup());
    afterEach(async () => {
      for (const o of opened.splice(0)) {
        for (const r of o.relays) await r.stop();
        await o.platform.stop(1_000);
        await o.queue.close();
      }
    });
    afterAll(() => backend.teardown());

    /** A started queue and a job platform over it; `effects` counts each key's handler runs. */
    const stack = async () => {
      const queue = backend.adapter(defs);
      await queue.start();
      const platform = createJobPlatform({ db, queue, log, concurrency: {} });
      const effects = new Map<string, number>();
      for (const q of queueNames) {
        platform.handle(q, 'deliver', async (job) => {
          const key = job.idempotencyKey ?? `no key ${job.id}`;
          effects.set(key, (effects.get(key) ?? 0) + 1);
          return { delivered: job.data.n };
        });
      }
      const relays: OutboxRelay[] = [];
      opened.push({ queue, platform, relays });
      /** A relay wired as the composition root wires it: enqueues go through the platform. */
      const relay = (over: Partial<Parameters<typeof createOutboxRelay>[0]> = {}) => {
        const r = createOutboxRelay({
          db,
          queue: { ...queue, enqueue: (q, n, d, o) => platform.enqueue(q as QueueName, n, d, o) },
          log,
          pollIntervalMs: 50,
          ...over,
        });
        relays.push(r);
        return r;
      };
      return { queue, platform, effects, relay };
    };

    const processedKeys = async (keys: string[]) =>
      (
        await db.system
          .select({ k: processedJobs.idempotencyKey })
          .from(processedJobs)
          .where(inArray(processedJobs.idempotencyKey, keys))
      ).map((r) => r.k);

    it('moves committed rows to the queue under their keys and marks them dispatched', async () => {
      const { queue, relay } = await stack();
      const tenantId = randomUUID();
      const items = [work('email', { tenantId }), work('email'), work('email')];
      await commit(items);
      await failure(
        db.transaction(async (tx) => {
          await recordWork(tx, work('email'));
          throw new Error('rolled back');
        }),
      );

      expect(await relay().runOnce()).toBe(3);
      const rows = await rowsFor(items.map((w) => w.idempotencyKey));
      for (const row of rows) {
        expect(row.dispatchedAt).toBeInstanceOf(Date);
        expect(row.attempts).toBe(1);
        expect(row.lastError).toBeNull();
      }
      for (const w of items) {
        const job = await queue.getJob(jobIdFor(w.idempotencyKey));
        expect(job).toMatchObject({ queue: 'email', name: 'deliver', state: 'waiting', tenantId: w.tenantId ?? null });
        expect(job!.data).toMatchObject({ n: w.payload.n, _key: w.idempotencyKey });
      }
      expect((await queue.counts('email')).waiting).toBe(3);
      expect(await relay().runOnce()).toBe(0);
    });

    it('a relay dying between enqueue and mark leaves the rows; redelivered, they are one job and one effect each', async () => {
      const { queue, platform, effects, relay } = await stack();
      const items = [work('webhooks'), work('webhooks')];
      const keys = items.map((w) => w.idempotencyKey);
      await commit(items);

      const crashed: number[][] = [];
      const dying = relay({
        claimMs: 1_000,
        onEnqueued: (ids) => {
          crashed.push(ids);
          throw new Error('relay killed after enqueue');
        },
      });
      await expect(dying.runOnce()).rejects.toThrow('relay killed after enqueue');
      expect(crashed.map((ids) => ids.length)).toEqual([2]);
      const claimed = await rowsFor(keys);
      expect(claimed.map((r) => [r.dispatchedAt, r.attempts])).toEqual([
        [null, 1],
        [null, 1],
      ]);
      const claimedUntil = Math.min(...claimed.map((r) => r.claimedUntil!.getTime()));
      for (const k of keys) expect(await queue.getJob(jobIdFor(k))).toMatchObject({ state: 'waiting' });

      // While the claim holds, another relay leaves the rows alone; once it lapses it delivers them.
      const second = relay({ claimMs: 1_000 });
      const early = await second.runOnce();
      if (Date.now() < claimedUntil - 100) expect(early).toBe(0);
      if (early === 0) expect(await eventually(() => second.runOnce(), 'the lapsed claim to be redelivered')).toBe(2);
      const delivered = await rowsFor(keys);
      for (const row of delivered) {
        expect(row.dispatchedAt).toBeInstanceOf(Date);
        expect(row.attempts).toBe(2);
      }
      // The job id comes from the key: still one job per row.
      expect(await queue.counts('webhooks')).toEqual({ waiting: 2, active: 0, delayed: 0, completed: 0, failed: 0 });

      await platform.start(['webhooks']);
      await eventually(async () => (await processedKeys(keys)).length === 2, 'both keys to be processed');
      for (const k of keys) await eventually(async () => (await queue.getJob(jobIdFor(k)))?.state === 'completed', k);
      expect(await queue.counts('webhooks')).toMatchObject({ waiting: 0, active: 0, completed: 2, failed: 0 });
      expect(Object.fromEntries(effects)).toEqual(Object.fromEntries(keys.map((k) => [k, 1])));
    });

    it('a row redelivered after its job finished and was purged runs no second effect', async () => {
      const { queue, platform, effects, relay } = await stack();
      await platform.start(['export']);
      const item = work('export', { name: 'deliver' });
      await commit([item]);
      const id = jobIdFor(item.idempotencyKey);

      await expect(
        relay({
          claimMs: 500,
          onEnqueued: () => {
            throw new Error('relay killed after enqueue');
          },
        }).runOnce(),
      ).rejects.toThrow('relay killed');
      await eventually(async () => (await queue.getJob(id))?.state === 'completed', 'the first delivery to run');
      await sleep(20);
      expect(await queue.purgeFinished('export', 0)).toBe(1);
      expect(await queue.getJob(id)).toBeNull();

      const second = relay({ claimMs: 500 });
      await eventually(() => second.runOnce(), 'the lapsed claim to be redelivered');
      const again = await eventually(async () => {
        const j = await queue.getJob(id);
        return j?.state === 'completed' ? j : null;
      }, 'the second delivery to complete');
      // The same id again, a new job: the handler's key turned it into a no-op.
      expect(again.result).toEqual({ skipped: 'already processed' });
      expect(effects.get(item.idempotencyKey)).toBe(1);
      expect(await processedKeys([item.idempotencyKey])).toEqual([item.idempotencyKey]);
    });

    it('two relays running at once never enqueue the same row twice', async () => {
      const { queue } = await stack();
      const items = Array.from({ length: 40 }, () => work('media'));
      await commit(items);

      const calls = new Map<string, number>();
      const inFlight = new Set<string>();
      const overlaps: string[] = [];
      const counting = (r: JobQueue): JobQueue => ({
        ...r,
        async enqueue(q, n, d, o) {
          const key = o?.idempotencyKey ?? '?';
          if (inFlight.has(key)) overlaps.push(key);
          inFlight.add(key);
          calls.set(key, (calls.get(key) ?? 0) + 1);
          try {
            await sleep(2);
            return await r.enqueue(q, n, d, o);
          } finally {
            inFlight.delete(key);
          }
        },
      });
      const relays = [0, 1].map(() =>
        createOutboxRelay({ db, queue: counting(queue), log, pollIntervalMs: 50, batchSize: 5, claimMs: 60_000 }),
      );
      const moved = [0, 0];
      await Promise.all(
        relays.map(async (r, i) => {
          for (let n = await r.runOnce(); n > 0; n = await r.runOnce()) moved[i]! += n;
        }),
      );
      expect(overlaps).toEqual([]);
      expect(moved[0]! + moved[1]!).toBe(40);
      expect([...calls.values()].every((n) => n === 1)).toBe(true);
      expect([...calls.keys()].sort()).toEqual(items.map((w) => w.idempotencyKey).sort());
      expect((await rowsFor(items.map((w) => w.idempotencyKey))).every((r) => r.dispatchedAt !== null)).toBe(true);
      expect((await queue.counts('media')).waiting).toBe(40);
    });

    // PGlite has one connection, so there is no second transaction to hold rows: server only.
    const onServer = kind.name === 'postgres' ? it : undefined;
    onServer?.('a relay skips rows another transaction holds instead of waiting', async () => {
      const { relay } = await stack();
      const items = [work('digest'), work('digest'), work('digest')];
      await commit(items);
      const [held] = await rowsFor([items[0]!.idempotencyKey]);
      const other = new pg.Client({ connectionString: tdb.url });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query('SELECT id FROM outbox WHERE id = $1 FOR UPDATE', [held!.id]);
        // Not blocked by the lock: the two free rows go, the held one stays.
        expect(await relay().runOnce()).toBe(2);
        expect((await rowsFor([items[0]!.idempotencyKey]))[0]!.dispatchedAt).toBeNull();
        await other.query('COMMIT');
      } finally {
        await other.end();
      }
      expect(await relay().runOnce()).toBe(1);
    });

    it('a failed enqueue keeps the row with its error; the running relay delivers what it is nudged to', async () => {
      const { queue, relay } = await stack();
      const bad = work('nope' as QueueName);
      const good = work('maintenance');
      await commit([bad, good]);
      expect(await relay({ claimMs: 60_000 }).runOnce()).toBe(1);
      const [badRow] = await rowsFor([bad.idempotencyKey]);
      expect(badRow!.dispatchedAt).toBeNull();
      expect(badRow!.lastError).toMatch(/unknown queue/);
      expect((await rowsFor([good.idempotencyKey]))[0]!.dispatchedAt).toBeInstanceOf(Date);

      const running = relay({ pollIntervalMs: 60_000 });
      running.start();
      const late = work('maintenance');
      await commit([late]);
      // Nudged (again, should the first nudge land before the relay sleeps), not polled: the
      // poll interval is a minute.
      await eventually(async () => {
        running.nudge();
        return (await rowsFor([late.idempotencyKey]))[0]?.dispatchedAt;
      }, 'the nudged relay to deliver');
      expect(await queue.getJob(jobIdFor(late.idempotencyKey))).toMatchObject({ state: 'waiting' });
      await running.stop();
      const [still] = await db.system.select().from(outbox).where(eq(outbox.idempotencyKey, bad.idempotencyKey));
      expect(still!.dispatchedAt).toBeNull();
    });
  });
});
