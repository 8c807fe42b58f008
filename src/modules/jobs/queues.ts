/**
 * The named queues and their policies. Each queue has its own workers, so a flood of media
 * jobs never delays an email; `priority` orders jobs where a backend shares workers.
 */
export const queueNames = [
  'email',
  'publishing',
  'events',
  'media',
  'digest',
  'export',
  'webhooks',
  'maintenance',
] as const;
export type QueueName = (typeof queueNames)[number];

export interface QueuePolicy {
  /** 1 is served first. */
  priority: number;
  /** Runs in all, the first included; after the last the job is dead-lettered. */
  attempts: number;
  backoff: { type: 'exponential' | 'fixed'; delayMs: number };
  /** A run longer than this is aborted and retried; an active job older than this is reported stuck. */
  timeoutMs: number;
  concurrency: number;
}

export const queuePolicies: Record<QueueName, QueuePolicy> = {
  email: {
    priority: 1,
    attempts: 3,
    backoff: { type: 'exponential', delayMs: 5_000 },
    timeoutMs: 60_000,
    concurrency: 5,
  },
  // Scheduled publications: due at a given time, cheap, retried quickly.
  publishing: {
    priority: 2,
    attempts: 5,
    backoff: { type: 'exponential', delayMs: 2_000 },
    timeoutMs: 30_000,
    concurrency: 2,
  },
  // Content events (post.published...): cache and CDN purges now, webhooks later. Quick, retried.
  events: {
    priority: 2,
    attempts: 8,
    backoff: { type: 'exponential', delayMs: 2_000 },
    timeoutMs: 30_000,
    concurrency: 5,
  },
  media: {
    priority: 10,
    attempts: 5,
    backoff: { type: 'exponential', delayMs: 10_000 },
    timeoutMs: 300_000,
    concurrency: 2,
  },
  digest: {
    priority: 5,
    attempts: 3,
    backoff: { type: 'exponential', delayMs: 60_000 },
    timeoutMs: 600_000,
    concurrency: 2,
  },
  export: {
    priority: 5,
    attempts: 2,
    backoff: { type: 'fixed', delayMs: 30_000 },
    timeoutMs: 3_600_000,
    concurrency: 1,
  },
  webhooks: {
    priority: 3,
    attempts: 8,
    backoff: { type: 'exponential', delayMs: 10_000 },
    timeoutMs: 30_000,
    concurrency: 10,
  },
  maintenance: {
    priority: 10,
    attempts: 3,
    backoff: { type: 'fixed', delayMs: 60_000 },
    timeoutMs: 600_000,
    concurrency: 1,
  },
};

/** Delay before run `attempt` + 1 (attempt counts from 1). */
export function backoffDelay(policy: QueuePolicy, attempt: number): number {
  return policy.backoff.type === 'fixed' ? policy.backoff.delayMs : policy.backoff.delayMs * 2 ** (attempt - 1);
}
