import { and, eq, inArray, isNotNull, lt, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { type Database, type Executor, tables } from '../../platform/db/index.js';
import type { JobQueue } from '../../platform/queue/index.js';
import type { QueueName } from './queues.js';

const { outbox } = tables;

export interface OutboxWork {
  queue: QueueName;
  name: string;
  payload: Record<string, unknown>;
  /** Same key, same job: delivering the row twice cannot run the work twice. */
  idempotencyKey: string;
  tenantId?: string | null;
  /** Not before this time (a scheduled publication): the job is enqueued delayed. */
  runAt?: Date;
}

/**
 * Records work in the caller's transaction: it commits with the write that caused it or not at
 * all. Works under the tenant role too (RLS lets a tenant insert only its own rows). A plain
 * insert: ON CONFLICT would need read access the tenant role does not have, and a key used
 * twice is a bug worth failing on.
 */
export async function recordWork(tx: Executor, work: OutboxWork): Promise<void> {
  await tx.insert(outbox).values({
    queue: work.queue,
    name: work.name,
    payload: work.payload,
    idempotencyKey: work.idempotencyKey,
    tenantId: work.tenantId ?? null,
    runAt: work.runAt ?? null,
  });
}

/** What modules hold: record work in a transaction, then say it committed (wakes a local relay). */
export interface Outbox {
  record(tx: Executor, work: OutboxWork): Promise<void>;
  committed(): void;
}

export function createOutbox(): Outbox & { onCommitted(listener: () => void): void } {
  const listeners: (() => void)[] = [];
  return {
    record: recordWork,
    committed: () => {
      for (const l of listeners) l();
    },
    onCommitted: (l) => listeners.push(l),
  };
}

export interface RelayOptions {
  db: Database;
  /** Where rows go: the job platform (which adds the idempotency key to the job) or a bare queue. */
  queue: Pick<JobQueue, 'enqueue'>;
  log: Logger;
  pollIntervalMs: number;
  batchSize?: number;
  /** How long a claimed batch is reserved; a relay that dies releases it by letting this pass. */
  claimMs?: number;
  /** Called after a batch is enqueued and before it is marked dispatched (instrumentation, fault tests). */
  onEnqueued?: (ids: number[]) => void | Promise<void>;
}

export interface OutboxRelay {
  start(): void;
  /** Moves one batch; returns how many rows it dispatched. */
  runOnce(): Promise<number>;
  /** Wakes the relay now (a local write just recorded work). */
  nudge(): void;
  stop(): Promise<void>;
}

/**
 * Moves outbox rows to the queue. Claim (one statement, SKIP LOCKED so relays on several
 * workers share the table), enqueue with the row's key as job id, then mark dispatched. A crash
 * after the enqueue leaves the rows claimed but not dispatched: the claim lapses and they are
 * enqueued again, which the job id turns into a no-op (and the handler's key, should the first
 * job have finished and been purged).
 */
export function createOutboxRelay(opts: RelayOptions): OutboxRelay {
  const batchSize = opts.batchSize ?? 100;
  const claimMs = opts.claimMs ?? 30_000;
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  async function claim() {
    const rows = await opts.db.system.execute(sql`
      UPDATE ${outbox} SET claimed_until = now() + ${claimMs} * interval '1 millisecond', attempts = attempts + 1
       WHERE id IN (
         SELECT id FROM ${outbox}
          WHERE dispatched_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
          ORDER BY id LIMIT ${batchSize}
          FOR UPDATE SKIP LOCKED)
      RETURNING id, tenant_id, queue, name, payload, idempotency_key, run_at`);
    return (rows as unknown as { rows: unknown[] }).rows;
  }

  async function runOnce(): Promise<number> {
    const batch = (await claim()) as {
      id: number | string;
      tenant_id: string | null;
      queue: string;
      name: string;
      payload: Record<string, unknown>;
      idempotency_key: string;
      run_at: Date | string | null;
    }[];
    if (batch.length === 0) return 0;
    const sent: number[] = [];
    for (const row of batch) {
      try {
        const delayMs = row.run_at ? new Date(row.run_at).getTime() - Date.now() : 0;
        await opts.queue.enqueue(row.queue, row.name, row.payload, {
          idempotencyKey: row.idempotency_key,
          tenantId: row.tenant_id,
          ...(delayMs > 0 ? { delayMs } : {}),
        });
        sent.push(Number(row.id));
      } catch (err) {
        // Left claimed: retried when the claim lapses.
        await opts.db.system
          .update(outbox)
          .set({ lastError: err instanceof Error ? err.message : String(err) })
          .where(eq(outbox.id, Number(row.id)));
        opts.log.warn({ err, outboxId: row.id, queue: row.queue }, 'outbox: enqueue failed; will retry');
      }
    }
    if (sent.length === 0) return 0;
    await opts.onEnqueued?.(sent);
    await opts.db.system
      .update(outbox)
      .set({ dispatchedAt: new Date(), lastError: null })
      .where(inArray(outbox.id, sent));
    return sent.length;
  }

  async function run() {
    while (running) {
      let moved = 0;
      try {
        moved = await runOnce();
      } catch (err) {
        opts.log.error({ err }, 'outbox relay: batch failed');
      }
      if (!running) break;
      if (moved < batchSize) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.pollIntervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    runOnce,
    nudge: () => wake?.(),
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}

/** Dispatched rows older than the cutoff; the unique key only needs to outlive redelivery. */
export async function purgeDispatched(db: Database, before: Date): Promise<number> {
  const gone = await db.system
    .delete(outbox)
    .where(and(isNotNull(outbox.dispatchedAt), lt(outbox.dispatchedAt, before)))
    .returning({ id: outbox.id });
  return gone.length;
}
