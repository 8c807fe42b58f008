import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { and, asc, count, eq, gt } from 'drizzle-orm';
import { type Database, type TenantContext, tables } from '../../platform/db/index.js';
import { notFound } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import type { JobPlatform } from '../jobs/platform.js';

const { posts } = tables;
const PAGE = 200;

/**
 * Content export: a job on the `export` queue writes the tenant's posts to a JSON file under
 * DATA_DIR/exports, reporting progress as it goes; the file is then downloadable by the
 * tenant's owners and admins. The job reads under the requester's tenant scope (RLS applies).
 */
export function createExportsService(deps: { db: Database; jobs: JobPlatform; dir: string }) {
  const { db, jobs } = deps;
  const fileOf = (tenantId: string, jobId: string) => join(deps.dir, tenantId, `${jobId}.json`);

  jobs.handle('export', 'posts', async (job) => {
    const ctx = { tenantId: job.tenantId ?? '', userId: String(job.data.requestedBy) };
    const exported: unknown[] = [];
    const total = await db.withTenant(ctx, async (tx) =>
      Number((await tx.select({ n: count() }).from(posts).where(eq(posts.tenantId, ctx.tenantId)))[0]?.n ?? 0),
    );
    let after = '';
    for (;;) {
      if (job.signal.aborted) throw new Error('export aborted');
      const rows = await db.withTenant(ctx, (tx) =>
        tx
          .select()
          .from(posts)
          .where(and(eq(posts.tenantId, ctx.tenantId), gt(posts.id, after || '00000000-0000-0000-0000-000000000000')))
          .orderBy(asc(posts.id))
          .limit(PAGE),
      );
      exported.push(...rows);
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]?.id ?? after;
      await job.progress(Math.min(99, Math.round((exported.length / Math.max(total, 1)) * 100)));
    }
    const file = fileOf(ctx.tenantId, job.id);
    await mkdir(join(deps.dir, ctx.tenantId), { recursive: true });
    // Written aside and renamed: a download never sees half a file.
    await writeFile(`${file}.tmp`, JSON.stringify({ exportedAt: new Date().toISOString(), posts: exported }));
    await rename(`${file}.tmp`, file);
    await job.progress(100);
    return { posts: exported.length };
  });

  return {
    /** Starts an export; its progress is at GET /api/v1/jobs/:id. */
    async start(ctx: TenantContext) {
      await inTenant(db, ctx, 'exports:create', async () => undefined);
      // Enqueued after the check's transaction, not inside it: the enqueue is not part of it
      // anyway, and pg-boss on PGlite needs the one connection the transaction would hold.
      return jobs.enqueue('export', 'posts', { requestedBy: ctx.userId }, { tenantId: ctx.tenantId });
    },

    async download(ctx: TenantContext, jobId: string) {
      return inTenant(db, ctx, 'exports:create', async () => {
        const file = fileOf(ctx.tenantId, jobId);
        const info = await stat(file).catch(() => null);
        if (!info) throw notFound('Export');
        return { size: info.size, stream: createReadStream(file) };
      });
    },
  };
}

export type ExportsService = ReturnType<typeof createExportsService>;
