import type { Logger } from 'pino';
import type { Database, Executor } from '../../platform/db/index.js';
import { RetryLaterError } from '../../platform/queue/index.js';
import { recordContentEvent } from '../delivery/events.js';
import type { ContentVersions } from '../delivery/versions.js';
import type { Outbox } from '../jobs/outbox.js';
import type { JobPlatform } from '../jobs/platform.js';
import { renderMarkdown } from './render.js';
import * as repo from './repository.js';

/**
 * Scheduled publication. Scheduling records a delayed job (through the outbox, with the
 * schedule's transaction); the job publishes the post if it is still scheduled for that very
 * time. A sweep every minute publishes anything overdue, so a lost job can delay a
 * publication by a minute but never drop it.
 */
export function registerPublishingJobs(
  jobs: JobPlatform,
  deps: { db: Database; log: Logger; outbox: Outbox; versions: ContentVersions },
) {
  const { db, log, outbox, versions } = deps;

  /**
   * Publishes in one transaction with its `post.published` events, reports each publication as
   * soon as it is committed, then drops the tenants' cached public reads so readers see it.
   */
  async function publishing<T extends { tenantId: string; id: string; type: 'post' | 'page'; slug: string }>(
    publish: (tx: Executor) => Promise<T[]>,
    report: (row: T) => void,
  ): Promise<T[]> {
    const rows = await db.transaction(async (tx) => {
      const published = await publish(tx);
      for (const p of published) {
        await recordContentEvent(outbox, tx, {
          event: `${p.type}.published`,
          tenantId: p.tenantId,
          resource: { type: p.type, id: p.id, slug: p.slug },
        });
      }
      return published;
    });
    for (const row of rows) report(row);
    if (rows.length) outbox.committed();
    for (const tenantId of new Set(rows.map((r) => r.tenantId))) await versions.bump(tenantId).catch(() => undefined);
    return rows;
  }

  jobs.handle('publishing', 'publish-scheduled', async (job) => {
    const tenantId = job.tenantId;
    const postId = String(job.data.postId);
    const publishAt = new Date(String(job.data.publishAt));
    if (!tenantId || Number.isNaN(publishAt.getTime())) throw new Error('publish-scheduled needs a tenant and a time');
    const state = await repo.findScheduleState(db.system, tenantId, postId);
    if (state?.status !== 'scheduled' || state.publishedAt?.getTime() !== publishAt.getTime()) {
      // Unscheduled, rescheduled, published by hand or deleted since: this job's time is gone.
      return { skipped: 'no longer scheduled for this time' };
    }
    const early = publishAt.getTime() - Date.now();
    // A timer that fires early waits for its time without spending an attempt.
    if (early > 0) throw new RetryLaterError('not due yet', early);
    const [published] = await publishing(
      async (tx) => {
        const row = await repo.publishIfScheduledFor(tx, tenantId, postId, publishAt);
        return row ? [row] : [];
      },
      () => log.info({ event: 'post.published', tenantId, postId, scheduled: true }, 'scheduled post published'),
    );
    return { published: Boolean(published) };
  });

  jobs.handle('maintenance', 'publish-overdue', async () => {
    const published = await publishing(
      (tx) => repo.publishOverdue(tx),
      (p) =>
        log.warn(
          { event: 'post.published', tenantId: p.tenantId, postId: p.id, scheduled: true, bySweep: true },
          'an overdue scheduled post was published by the sweep (its job was late or lost)',
        ),
    );
    return { published: published.length };
  });
  jobs.every('maintenance', 'publish-overdue', '* * * * *', 'publish-overdue');

  // Posts saved before bodies were rendered on save get their HTML, plaintext and reading time.
  // One batch a run: a body that renders to nothing (only a stripped script) stays "unrendered"
  // and must not keep a loop going.
  jobs.handle('maintenance', 'render-posts', async () => {
    const batch = await repo.unrendered(db.system, 500);
    for (const p of batch) await repo.storeRendering(db.system, p, renderMarkdown(p.body));
    return { rendered: batch.length };
  });
  jobs.every('maintenance', 'render-posts', '*/10 * * * *', 'render-posts');
}
