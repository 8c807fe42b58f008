import { sql } from 'drizzle-orm';
import slugify from 'slugify';
import type { Database, Executor, TenantContext } from '../../platform/db/index.js';
import type { MemberRole, PostStatus } from '../../platform/db/schema.js';
import { badRequest, conflict, forbidden, isUniqueViolation, notFound } from '../../shared/errors.js';
import { canOnRecord } from '../../shared/permissions.js';
import { inTenant } from '../../shared/tenant-scope.js';
import type { Outbox } from '../jobs/outbox.js';
import type { TagsService } from '../tags/service.js';
import { renderMarkdown } from './render.js';
import * as repo from './repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PostTag = { id: string; name: string; slug: string };

export const toPostDto = (p: repo.PostRow, tags: PostTag[]) => ({
  id: p.id,
  tenantId: p.tenantId,
  authorId: p.authorId,
  title: p.title,
  slug: p.slug,
  body: p.body,
  html: p.html,
  readingTime: p.readingTime,
  excerpt: p.excerpt,
  tags,
  status: p.status,
  publishedAt: p.publishedAt?.toISOString() ?? null,
  version: p.version,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});
export type PostDto = ReturnType<typeof toPostDto>;

// --- cursors: opaque to clients, base64url of [sort value, id] ---
function encodeCursor(row: repo.PostRow, sort: repo.ListFilter['sort']): string {
  const value = sort === 'created_at' ? row.createdAt : row.publishedAt;
  return Buffer.from(JSON.stringify([value?.toISOString() ?? null, row.id])).toString('base64url');
}
function decodeCursor(cursor: string): repo.ListFilter['after'] {
  try {
    const [value, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    const date = value === null ? null : new Date(String(value));
    // Years 1–9999 only: a JavaScript date beyond them (±275760) is not a timestamp PostgreSQL takes.
    const year = date?.getUTCFullYear();
    if (typeof id !== 'string' || !UUID.test(id) || (year !== undefined && !(year >= 1 && year <= 9999))) {
      throw new Error();
    }
    return { value: date, id };
  } catch {
    throw badRequest('invalid_cursor', 'cursor is not one this API returned');
  }
}

function deriveSlug(title: string): string {
  const s = slugify(title, { lower: true, strict: true, trim: true }).slice(0, 80).replace(/-+$/, '');
  return s || 'post';
}

/** `base`, or `base-N` with the lowest N not yet used in the tenant. */
async function freeSlug(tx: Executor, tenantId: string, base: string): Promise<string> {
  const taken = new Set(await repo.slugsLike(tx, tenantId, base));
  if (!taken.has(base)) return base;
  let n = 2;
  while (taken.has(`${base}-${n}`)) n++;
  return `${base}-${n}`;
}

const slugTaken = () => conflict('slug_taken', 'Another post in this tenant already has this slug');
const stale = (current: number) =>
  conflict('version_conflict', 'The post was changed since you read it; reload and reapply your change', {
    currentVersion: current,
  });

export interface PostsService {
  create(
    ctx: TenantContext,
    input: { title: string; body: string; excerpt?: string | null; slug?: string; tags?: string[] },
  ): Promise<PostDto>;
  get(ctx: TenantContext, idOrSlug: string): Promise<PostDto>;
  list(
    ctx: TenantContext,
    q: { limit: number; cursor?: string; status?: PostStatus; author?: string; sort: repo.ListFilter['sort'] },
  ): Promise<{ data: PostDto[]; nextCursor: string | null }>;
  update(
    ctx: TenantContext,
    id: string,
    patch: { title?: string; body?: string; excerpt?: string | null; slug?: string; tags?: string[] },
    version: number | undefined,
  ): Promise<PostDto>;
  publish(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  unpublish(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  archive(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  /** A draft (or a scheduled post, rescheduled) published by the job platform at `publishAt`. */
  schedule(ctx: TenantContext, id: string, publishAt: Date, version?: number): Promise<PostDto>;
  /** A scheduled post back to draft; its pending publication then does nothing. */
  unschedule(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  remove(ctx: TenantContext, id: string, version?: number): Promise<void>;
}

export function createPostsService(deps: { db: Database; outbox: Outbox; tags: TagsService }): PostsService {
  const { db, outbox } = deps;

  /** A post just written, with its tags (read the way every read reads them). */
  async function one(tx: Executor, tenantId: string, row: repo.PostRow): Promise<PostDto> {
    return toPostDto(row, await repo.findTags(tx, tenantId, row.id));
  }

  /** Loads a post the caller may act on, or fails with 404 / 403 / 409. */
  async function loadForWrite(
    tx: Executor,
    ctx: TenantContext,
    role: MemberRole,
    id: string,
    action: 'posts:update' | 'posts:publish' | 'posts:delete',
    version: number | undefined,
  ) {
    // Locked: a concurrent writer waits, then sees this one's outcome (the new version, or no post).
    const post = await repo.findByIdForUpdate(tx, ctx.tenantId, id);
    if (!post) throw notFound('Post');
    if (!canOnRecord(role, action, post.authorId === ctx.userId)) throw forbidden();
    if (version !== undefined && version !== post.version) throw stale(post.version);
    return post;
  }

  async function transition(ctx: TenantContext, id: string, to: PostStatus, version?: number) {
    return inTenant(db, ctx, 'posts:read', async (tx, role) => {
      const post = await loadForWrite(tx, ctx, role, id, 'posts:publish', version);
      if (post.status === to) return one(tx, ctx.tenantId, post); // idempotent
      // A scheduled post published by hand goes out now, not at its scheduled time.
      const publishedAt =
        to === 'published'
          ? post.status === 'scheduled'
            ? sql`now()`
            : sql`coalesce(${post.publishedAt}::timestamptz, now())`
          : to === 'draft'
            ? null
            : undefined;
      const row = await repo.updateIfVersion(tx, ctx.tenantId, id, post.version, {
        status: to,
        ...(publishedAt !== undefined && { publishedAt }),
      });
      if (!row) throw stale(post.version + 1);
      return one(tx, ctx.tenantId, row);
    });
  }

  return {
    create: (ctx, input) =>
      inTenant(db, ctx, 'posts:create', async (tx) => {
        let slug = input.slug;
        if (slug === undefined) {
          const base = deriveSlug(input.title);
          // Concurrent creates deriving from the same base take turns, so they pick different numbers.
          await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`${ctx.tenantId}/${base}`}, 0))`);
          slug = await freeSlug(tx, ctx.tenantId, base);
        }
        try {
          const row = await repo.insertPost(tx, {
            tenantId: ctx.tenantId,
            authorId: ctx.userId,
            title: input.title,
            slug,
            body: input.body,
            excerpt: input.excerpt ?? null,
            ...renderMarkdown(input.body),
          });
          if (input.tags?.length) await deps.tags.setPostTags(tx, ctx.tenantId, row.id, input.tags);
          return one(tx, ctx.tenantId, row);
        } catch (err) {
          if (isUniqueViolation(err, 'posts_tenant_slug_key')) throw slugTaken();
          throw err;
        }
      }),

    get: (ctx, idOrSlug) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        // A slug may look like an id (hex and hyphens): an id that matches nothing is tried as a slug.
        const row =
          (UUID.test(idOrSlug) ? await repo.findById(tx, ctx.tenantId, idOrSlug) : undefined) ??
          (await repo.findBySlug(tx, ctx.tenantId, idOrSlug));
        if (!row) throw notFound('Post');
        return toPostDto(row, row.tags);
      }),

    list: (ctx, q) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        const rows = await repo.listPosts(tx, ctx.tenantId, {
          limit: q.limit,
          status: q.status,
          authorId: q.author,
          sort: q.sort,
          after: q.cursor ? decodeCursor(q.cursor) : undefined,
        });
        const more = rows.length > q.limit;
        const pageRows = more ? rows.slice(0, q.limit) : rows;
        const last = pageRows[pageRows.length - 1];
        return {
          data: pageRows.map((r) => toPostDto(r, r.tags)),
          nextCursor: more && last ? encodeCursor(last, q.sort) : null,
        };
      }),

    update: (ctx, id, patch, version) =>
      inTenant(db, ctx, 'posts:read', async (tx, role) => {
        if (version === undefined) {
          throw badRequest('version_required', 'Send the version you read, as "version" in the body or If-Match');
        }
        const post = await loadForWrite(tx, ctx, role, id, 'posts:update', version);
        try {
          // A new body is rendered again; the rendering never lags the Markdown it came from.
          const { tags, ...fields } = patch;
          const rendered = fields.body === undefined ? {} : renderMarkdown(fields.body);
          const row = await repo.updateIfVersion(tx, ctx.tenantId, id, post.version, { ...fields, ...rendered });
          if (!row) throw stale(post.version + 1);
          if (tags !== undefined) await deps.tags.setPostTags(tx, ctx.tenantId, id, tags);
          return one(tx, ctx.tenantId, row);
        } catch (err) {
          if (isUniqueViolation(err, 'posts_tenant_slug_key')) throw slugTaken();
          throw err;
        }
      }),

    publish: (ctx, id, version) => transition(ctx, id, 'published', version),
    unpublish: (ctx, id, version) => transition(ctx, id, 'draft', version),
    archive: (ctx, id, version) => transition(ctx, id, 'archived', version),

    async schedule(ctx, id, publishAt, version) {
      if (publishAt.getTime() <= Date.now()) {
        throw badRequest('publish_at_in_past', 'publishAt must be in the future; to publish now, use /publish');
      }
      const dto = await inTenant(db, ctx, 'posts:read', async (tx, role) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:publish', version);
        if (post.status !== 'draft' && post.status !== 'scheduled') {
          throw conflict('not_a_draft', `Only drafts can be scheduled; this post is ${post.status}`);
        }
        const row = await repo.updateIfVersion(tx, ctx.tenantId, id, post.version, {
          status: 'scheduled',
          publishedAt: publishAt,
        });
        if (!row) throw stale(post.version + 1);
        // Commits with the schedule. The key names the time, so a reschedule is a new job and the
        // old one finds the post no longer due at its time and does nothing.
        await outbox.record(tx, {
          queue: 'publishing',
          name: 'publish-scheduled',
          tenantId: ctx.tenantId,
          payload: { postId: id, publishAt: publishAt.toISOString() },
          idempotencyKey: `publish:${ctx.tenantId}:${id}:${publishAt.toISOString()}:${row.version}`,
          runAt: publishAt,
        });
        return one(tx, ctx.tenantId, row);
      });
      outbox.committed();
      return dto;
    },

    unschedule: (ctx, id, version) =>
      inTenant(db, ctx, 'posts:read', async (tx, role) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:publish', version);
        if (post.status !== 'scheduled') {
          throw conflict('not_scheduled', `Only scheduled posts can be unscheduled; this post is ${post.status}`);
        }
        const row = await repo.updateIfVersion(tx, ctx.tenantId, id, post.version, {
          status: 'draft',
          publishedAt: null,
        });
        if (!row) throw stale(post.version + 1);
        return one(tx, ctx.tenantId, row);
      }),

    remove: (ctx, id, version) =>
      inTenant(db, ctx, 'posts:read', async (tx, role) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:delete', version);
        if (!(await repo.deleteIfVersion(tx, ctx.tenantId, id, post.version))) throw stale(post.version + 1);
      }),
  };
}
