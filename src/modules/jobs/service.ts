import type { Database, TenantContext } from '../../platform/db/index.js';
import type { JobInfo, JobQueue, QueueCounts } from '../../platform/queue/index.js';
import { conflict, forbidden, notFound } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import { type QueueName, queueNames } from './queues.js';

/**
 * Who is asking: a platform admin sees every job; anyone else acts in a tenant and, as its
 * owner or admin, sees that tenant's jobs only (another tenant's job is a 404).
 */
export type JobViewer =
  | { platformAdmin: true; tenant?: TenantContext | null }
  | { platformAdmin: false; tenant: TenantContext };

const SCAN_LIMIT = 1_000;

export function createJobsService(deps: { db: Database; queue: JobQueue }) {
  const { db, queue } = deps;

  /** Throws unless the viewer may act on the tenant's jobs at all. */
  async function scopeOf(viewer: JobViewer, action: 'jobs:read' | 'jobs:retry'): Promise<string | null> {
    if (viewer.platformAdmin) return null;
    await inTenant(db, viewer.tenant, action, async () => undefined);
    return viewer.tenant.tenantId;
  }

  async function visibleJob(viewer: JobViewer, id: string, action: 'jobs:read' | 'jobs:retry'): Promise<JobInfo> {
    const tenantId = await scopeOf(viewer, action);
    const job = await queue.getJob(id);
    if (!job || (tenantId && job.tenantId !== tenantId)) throw notFound('Job');
    return job;
  }

  return {
    getJob: (viewer: JobViewer, id: string) => visibleJob(viewer, id, 'jobs:read'),

    async stats(viewer: JobViewer): Promise<Record<QueueName, QueueCounts>> {
      if (!viewer.platformAdmin) throw forbidden('Queue statistics cover every tenant; platform admins only');
      const all = await Promise.all(queueNames.map(async (q) => [q, await queue.counts(q)] as const));
      return Object.fromEntries(all) as Record<QueueName, QueueCounts>;
    },

    /** The dead letters of a queue; a tenant admin sees only the tenant's (from the newest 1,000). */
    async failed(viewer: JobViewer, name: QueueName, page: { limit: number; offset: number }) {
      const tenantId = await scopeOf(viewer, 'jobs:read');
      if (!tenantId) return queue.failed(name, page);
      const jobs = (await queue.failed(name, { limit: SCAN_LIMIT, offset: 0 })).filter((j) => j.tenantId === tenantId);
      return jobs.slice(page.offset, page.offset + page.limit);
    },

    async retry(viewer: JobViewer, id: string): Promise<JobInfo> {
      const job = await visibleJob(viewer, id, 'jobs:retry');
      if (job.state !== 'failed')
        throw conflict('job_not_failed', `Only failed jobs can be retried; this one is ${job.state}`);
      if (!(await queue.retry(id))) throw conflict('job_not_failed', 'The job is no longer failed');
      return (await queue.getJob(id)) ?? job;
    },
  };
}

export type JobsService = ReturnType<typeof createJobsService>;
