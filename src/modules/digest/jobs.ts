import { and, desc, eq, gte, inArray } from 'drizzle-orm';
import { type Database, tables } from '../../platform/db/index.js';
import type { JobPlatform } from '../jobs/platform.js';
import type { SendMail } from '../mail/jobs.js';
import { digestEmail } from '../mail/templates.js';

const { posts, tenants, memberships, users } = tables;
const WEEK_MS = 7 * 86_400_000;

/**
 * The weekly digest: a cron job fans out one job per tenant that published something in the
 * last week; each sends its staff (owners, admins, editors) the list. Keys name the tenant and
 * the week, so a re-run of the fan-out or a retried tenant job sends nothing twice. Runs as
 * the system role with explicit tenant filters (no caller to scope to).
 */
export function registerDigestJobs(
  jobs: JobPlatform,
  deps: { db: Database; send: SendMail; publicUrl: string; cron: string },
) {
  const { db } = deps;

  jobs.handle('digest', 'weekly', async () => {
    const since = new Date(Date.now() - WEEK_MS);
    const week = since.toISOString().slice(0, 10);
    const active = await db.system
      .selectDistinct({ tenantId: posts.tenantId })
      .from(posts)
      .where(and(eq(posts.status, 'published'), gte(posts.publishedAt, since)));
    for (const { tenantId } of active) {
      await jobs.enqueue(
        'digest',
        'tenant',
        { since: since.toISOString() },
        {
          tenantId,
          idempotencyKey: `digest:${tenantId}:${week}`,
        },
      );
    }
    return { tenants: active.length };
  });

  jobs.handle('digest', 'tenant', async (job) => {
    const tenantId = job.tenantId;
    if (!tenantId) throw new Error('digest job without a tenant');
    const since = new Date(String(job.data.since));
    const [tenant] = await db.system.select().from(tenants).where(eq(tenants.id, tenantId)).limit(1);
    if (!tenant) return { skipped: 'tenant not found' };
    const recent = await db.system
      .select({ title: posts.title, slug: posts.slug, publishedAt: posts.publishedAt })
      .from(posts)
      .where(and(eq(posts.tenantId, tenantId), eq(posts.status, 'published'), gte(posts.publishedAt, since)))
      .orderBy(desc(posts.publishedAt))
      .limit(50);
    if (recent.length === 0) return { skipped: 'nothing published' };
    const staff = await db.system
      .select({ email: users.email })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(and(eq(memberships.tenantId, tenantId), inArray(memberships.role, ['owner', 'admin', 'editor'])));
    const mail = digestEmail({
      tenantName: tenant.name,
      posts: recent.map((p) => ({
        title: p.title,
        url: `${deps.publicUrl}/api/v1/posts/${p.slug}`,
        publishedAt: p.publishedAt?.toISOString() ?? '',
      })),
    });
    for (const [i, { email }] of staff.entries()) {
      await deps.send({ to: email, ...mail, idempotencyKey: `${job.idempotencyKey ?? job.id}:${email}` });
      await job.progress(Math.round(((i + 1) / staff.length) * 100));
    }
    return { recipients: staff.length, posts: recent.length };
  });

  jobs.every('digest', 'weekly', deps.cron, 'weekly');
}
