import { randomUUID } from 'node:crypto';
import type { Executor } from '../../platform/db/index.js';
import type { PostType } from '../../platform/db/schema.js';
import type { Outbox } from '../jobs/outbox.js';

/**
 * Content events: every change to what readers see is written to the outbox in the transaction
 * of the change, so none is lost and none is reported for a change that rolled back. Their jobs
 * (the `events` queue, ./jobs.ts) purge the CDN; later, webhooks and notifications hang here.
 */
export const contentEventNames = [
  'post.published',
  'post.updated',
  'post.unpublished',
  'post.deleted',
  'page.published',
  'page.updated',
  'page.unpublished',
  'page.deleted',
  'tag.created',
  'tag.updated',
  'tag.deleted',
  'author.updated',
  'settings.updated',
] as const;
export type ContentEventName = (typeof contentEventNames)[number];

export interface ContentEvent {
  event: ContentEventName;
  tenantId: string;
  resource: { type: PostType | 'tag' | 'author' | 'settings'; id: string; slug?: string };
}

/** Surrogate keys: every public response is tagged with its tenant and each record it contains. */
export const surrogateKey = {
  tenant: (tenantId: string) => `t-${tenantId}`,
  post: (id: string) => `post-${id}`,
  tag: (id: string) => `tag-${id}`,
  author: (id: string) => `author-${id}`,
};

/** What an event purges: the record's own key, and the tenant's (its lists and feeds change too). */
export function keysOf(e: ContentEvent): string[] {
  const own =
    e.resource.type === 'tag'
      ? surrogateKey.tag(e.resource.id)
      : e.resource.type === 'author'
        ? surrogateKey.author(e.resource.id)
        : e.resource.type === 'settings'
          ? undefined
          : surrogateKey.post(e.resource.id);
  return own ? [surrogateKey.tenant(e.tenantId), own] : [surrogateKey.tenant(e.tenantId)];
}

export async function recordContentEvent(outbox: Pick<Outbox, 'record'>, tx: Executor, e: ContentEvent) {
  await outbox.record(tx, {
    queue: 'events',
    name: e.event,
    tenantId: e.tenantId,
    payload: { ...e, occurredAt: new Date().toISOString() },
    idempotencyKey: `event:${e.event}:${e.resource.id}:${randomUUID()}`,
  });
}
