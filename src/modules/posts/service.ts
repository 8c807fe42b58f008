import { sql } from 'drizzle-orm';
import slugify from 'slugify';
import type { Database, Executor, TenantContext } from '../../platform/db/index.js';
import type { MemberRole, PostStatus, PostType } from '../../platform/db/schema.js';
import { badRequest, conflict, forbidden, isUniqueViolation, notFound } from '../../shared/errors.js';
import { can, canOnRecord } from '../../shared/permissions.js';
import { inTenant } from '../../shared/tenant-scope.js';
import { type ContentEventName, recordContentEvent } from '../delivery/events.js';
import type { ContentVersions } from '../delivery/versions.js';
import type { Outbox } from '../jobs/outbox.js';
import type { TagsService } from '../tags/service.js';
import { deriveExcerpt, renderMarkdown } from './render.js';
import * as repo from './repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PostTag = repo.PostTagRef;
export type PostAuthor = repo.PostAuthorRef;

export const toPostDto = (p: repo.PostWithRelations) => ({
  id: p.id,
  tenantId: p.tenantId,
  type: p.type,
  authorId: p.authorId,
  title: p.title,
  slug: p.slug,
  body: p.body,
  html: p.html,
  readingTime: p.readingTime,
  excerpt: p.excerpt ?? deriveExcerpt(p.plaintext),
  customExcerpt: p.excerpt,
  featured: p.featured,
  featureImage: p.featureImage,
  featureImageAlt: p.featureImageAlt,
  featureImageCaption: p.featureImageCaption,
  metaTitle: p.metaTitle,
  metaDescription: p.metaDescription,
  canonicalUrl: p.canonicalUrl,
  ogImage: p.ogImage,
  ogTitle: p.ogTitle,
  ogDescription: p.ogDescription,
  twitterImage: p.twitterImage,
  twitterTitle: p.twitterTitle,
  twitterDescription: p.twitterDescription,
  tags: p.tags,
  authors: p.authors,
  status: p.status,
  publishedAt: p.publishedAt?.toISOString() ?? null,
  version: p.version,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});
export type PostDto = ReturnType<typeof toPostDto>;

/** What staff send: the editable fields (`excerpt` is the custom excerpt), tag names, author ids. */
export type PostInput = Partial<repo.EditableFields> & { tags?: string[]; authors?: string[] };
/** A revision's stored state: the editable fields, tag names and author ids, as they were. */
export type RevisionSnapshot = repo.EditableFields & { tags: string[]; authors: string[] };

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

function deriveSlug(title: string, type: PostType): string {
  const s = slugify(title, { lower: true, strict: true, trim: true }).slice(0, 80).replace(/-+$/, '');
  return s || type;
}

/** `base`, or `base-N` with the lowest N not yet used in the tenant. */
async function freeSlug(tx: Executor, tenantId: string, base: string): Promise<string> {
  const taken = new Set(await repo.slugsLike(tx, tenantId, base));
  if (!taken.has(base)) return base;
  let n = 2;
  while (taken.has(`${base}-${n}`)) n++;
  return `${base}-${n}`;
}

export interface PostsService {
  readonly type: PostType;
  create(ctx: TenantContext, input: PostInput & { title: string; body: string }): Promise<PostDto>;
  get(ctx: TenantContext, idOrSlug: string): Promise<PostDto>;
  list(
    ctx: TenantContext,
    q: { limit: number; cursor?: string; status?: PostStatus; author?: string; sort: repo.ListFilter['sort'] },
  ): Promise<{ data: PostDto[]; nextCursor: string | null }>;
  update(ctx: TenantContext, id: string, patch: PostInput, version: number | undefined): Promise<PostDto>;
  publish(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  unpublish(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  archive(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  /** A draft (or a scheduled post, rescheduled) published by the job platform at `publishAt`. */
  schedule(ctx: TenantContext, id: string, publishAt: Date, version?: number): Promise<PostDto>;
  /** A scheduled post back to draft; its pending publication then does nothing. */
  unschedule(ctx: TenantContext, id: string, version?: number): Promise<PostDto>;
  remove(ctx: TenantContext, id: string, version?: number): Promise<void>;
  revisions(ctx: TenantContext, id: string): Promise<RevisionSummary[]>;
  revision(ctx: TenantContext, id: string, revisionId: string): Promise<RevisionDto>;
  /** Writes a revision's state back (a new version, and itself a new revision). */
  restore(ctx: TenantContext, id: string, revisionId: string, version?: number): Promise<PostDto>;
}

export type RevisionReason = 'create' | 'update' | 'restore';
export type RevisionSummary = {
  id: string;
  postVersion: number;
  reason: RevisionReason;
  title: string;
  createdBy: string | null;
  createdAt: string;
};
export type RevisionDto = RevisionSummary & { snapshot: RevisionSnapshot };

const toRevisionSummary = (r: Omit<repo.RevisionRow, 'tenantId' | 'postId' | 'snapshot'>): RevisionSummary => ({
  id: r.id,
  postVersion: r.postVersion,
  reason: r.reason as RevisionReason,
  title: r.title,
  createdBy: r.createdBy,
  createdAt: r.createdAt.toISOString(),
});

export interface PostsServiceDeps {
  db: Database;
  outbox: Outbox;
  tags: TagsService;
  versions: ContentVersions;
  /** Revisions kept per post; the oldest beyond go. */
  revisionsPerPost: number;
}

/** What a write did beyond its rows: known only once its transaction has committed. */
interface Effects {
  recorded: boolean;
  publicChange: boolean;
}

/**
 * Posts and pages: one model, one service per type (`createPostsService(deps, 'page')`). A post
 * of the other type is a 404 here, as another tenant's is.
 */
export function createPostsService(deps: PostsServiceDeps, type: PostType = 'post'): PostsService {
  const { db, outbox } = deps;
  const label = type === 'post' ? 'Post' : 'Page';
  const slugTaken = () => conflict('slug_taken', `Another post or page in this tenant already has this slug`);
  const stale = (current: number) =>
    conflict('version_conflict', `The ${type} was changed since you read it; reload and reapply your change`, {
      currentVersion: current,
    });

  /** Runs a write in the caller's tenant; after commit, wakes the relay and drops cached public reads. */
  async function write<T>(ctx: TenantContext, fn: (tx: Executor, role: MemberRole, fx: Effects) => Promise<T>) {
    const fx: Effects = { recorded: false, publicChange: false };
    const result = await inTenant(db, ctx, 'posts:read', (tx, role) => fn(tx, role, fx));
    if (fx.recorded) outbox.committed();
    // The event's job bumps the version too: a process that dies right here delays, never loses, it.
    if (fx.publicChange) await deps.versions.bump(ctx.tenantId).catch(() => undefined);
    return result;
  }

  async function emit(tx: Executor, fx: Effects, tenantId: string, row: repo.PostRow, what: string) {
    await recordContentEvent(outbox, tx, {
      event: `${type}.${what}` as ContentEventName,
      tenantId,
      resource: { type, id: row.id, slug: row.slug },
    });
    fx.recorded = true;
    fx.publicChange = true;
  }

  /** A post just written, with its tags and authors (read the way every read reads them). */
  async function one(tx: Executor, tenantId: string, row: repo.PostRow): Promise<PostDto> {
    return toPostDto({ ...row, ...(await repo.findRelations(tx, tenantId, row.id)) });
  }

  async function storeRevision(tx: Executor, ctx: TenantContext, dto: PostDto, reason: RevisionReason) {
    const snapshot: RevisionSnapshot = {
      ...(Object.fromEntries(
        repo.editableFields.map((f) => [f, f === 'excerpt' ? dto.customExcerpt : dto[f]]),
      ) as repo.EditableFields),
      tags: dto.tags.map((t) => t.name),
      authors: dto.authors.map((a) => a.id),
    };
    await repo.insertRevision(
      tx,
      {
        tenantId: ctx.tenantId,
        postId: dto.id,
        postVersion: dto.version,
        reason,
        title: dto.title,
        snapshot,
        createdBy: ctx.userId,
      },
      deps.revisionsPerPost,
    );
  }

  /** The authors a write names, checked: members of the tenant, each once, the caller among them unless an editor. */
  async function checkAuthors(tx: Executor, ctx: TenantContext, role: MemberRole, ids: string[]) {
    const unique = [...new Set(ids)];
    const members = await repo.membersAmong(tx, ctx.tenantId, unique);
    const unknown = unique.filter((id) => !members.has(id));
    if (unknown.length) {
      throw badRequest('unknown_author', 'Every author must be a member of this tenant', { authors: unknown });
    }
    if (!can(role, 'posts:update:any') && !unique.includes(ctx.userId)) {
      throw forbidden(`You cannot take yourself off the authors of a ${type}`);
    }
    return unique;
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
    const post = await repo.findByIdForUpdate(tx, ctx.tenantId, type, id);
    if (!post) throw notFound(label);
    const own = post.authorId === ctx.userId || (await repo.isAuthorOf(tx, ctx.tenantId, id, ctx.userId));
    if (!canOnRecord(role, action, own)) throw forbidden();
    if (version !== undefined && version !== post.version) throw stale(post.version);
    return post;
  }

  /** The one path for content edits: update, and restore of a revision. */
  async function applyEdit(
    tx: Executor,
    ctx: TenantContext,
    role: MemberRole,
    fx: Effects,
    post: repo.PostRow,
    patch: PostInput,
    reason: 'update' | 'restore',
  ) {
    const { tags, authors, ...fields } = patch;
    const authorIds = authors === undefined ? undefined : await checkAuthors(tx, ctx, role, authors);
    // A new body is rendered again; the rendering never lags the Markdown it came from.
    const rendered = fields.body === undefined ? {} : renderMarkdown(fields.body);
    try {
      const row = await repo.updateIfVersion(tx, ctx.tenantId, post.id, post.version, {
        ...fields,
        ...rendered,
        ...(authorIds && { authorId: authorIds[0] }),
      });
      if (!row) throw stale(post.version + 1);
      if (tags !== undefined) await deps.tags.setPostTags(tx, ctx.tenantId, post.id, tags);
      if (authorIds) await repo.setPostAuthors(tx, ctx.tenantId, post.id, authorIds);
      const dto = await one(tx, ctx.tenantId, row);
      await storeRevision(tx, ctx, dto, reason);
      if (row.status === 'published') await emit(tx, fx, ctx.tenantId, row, 'updated');
      return dto;
    } catch (err) {
      if (isUniqueViolation(err, 'posts_tenant_slug_key')) throw slugTaken();
      throw err;
    }
  }

  function transition(ctx: TenantContext, id: string, to: PostStatus, version?: number) {
    return write(ctx, async (tx, role, fx) => {
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
      if (to === 'published') await emit(tx, fx, ctx.tenantId, row, 'published');
      else if (post.status === 'published') await emit(tx, fx, ctx.tenantId, row, 'unpublished');
      return one(tx, ctx.tenantId, row);
    });
  }

  return {
    type,

    create: (ctx, input) =>
      write(ctx, async (tx, role) => {
        if (!can(role, 'posts:create')) throw forbidden();
        const { tags, authors, ...fields } = input;
        const authorIds = await checkAuthors(tx, ctx, role, authors ?? [ctx.userId]);
        let slug = fields.slug;
        if (slug === undefined) {
          const base = deriveSlug(fields.title, type);
          // Concurrent creates deriving from the same base take turns, so they pick different numbers.
          await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`${ctx.tenantId}/${base}`}, 0))`);
          slug = await freeSlug(tx, ctx.tenantId, base);
        }
        try {
          const row = await repo.insertPost(tx, {
            ...fields,
            tenantId: ctx.tenantId,
            type,
            authorId: authorIds[0]!,
            slug,
            ...renderMarkdown(fields.body),
          });
          await repo.setPostAuthors(tx, ctx.tenantId, row.id, authorIds);
          if (tags?.length) await deps.tags.setPostTags(tx, ctx.tenantId, row.id, tags);
          const dto = await one(tx, ctx.tenantId, row);
          await storeRevision(tx, ctx, dto, 'create');
          return dto;
        } catch (err) {
          if (isUniqueViolation(err, 'posts_tenant_slug_key')) throw slugTaken();
          throw err;
        }
      }),

    get: (ctx, idOrSlug) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        // A slug may look like an id (hex and hyphens): an id that matches nothing is tried as a slug.
        const row =
          (UUID.test(idOrSlug) ? await repo.findById(tx, ctx.tenantId, type, idOrSlug) : undefined) ??
          (await repo.findBySlug(tx, ctx.tenantId, type, idOrSlug));
        if (!row) throw notFound(label);
        return toPostDto(row);
      }),

    list: (ctx, q) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        const rows = await repo.listPosts(tx, ctx.tenantId, {
          type,
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
          data: pageRows.map(toPostDto),
          nextCursor: more && last ? encodeCursor(last, q.sort) : null,
        };
      }),

    update: (ctx, id, patch, version) =>
      write(ctx, async (tx, role, fx) => {
        if (version === undefined) {
          throw badRequest('version_required', 'Send the version you read, as "version" in the body or If-Match');
        }
        const post = await loadForWrite(tx, ctx, role, id, 'posts:update', version);
        return applyEdit(tx, ctx, role, fx, post, patch, 'update');
      }),

    publish: (ctx, id, version) => transition(ctx, id, 'published', version),
    unpublish: (ctx, id, version) => transition(ctx, id, 'draft', version),
    archive: (ctx, id, version) => transition(ctx, id, 'archived', version),

    schedule(ctx, id, publishAt, version) {
      if (publishAt.getTime() <= Date.now()) {
        throw badRequest('publish_at_in_past', 'publishAt must be in the future; to publish now, use /publish');
      }
      return write(ctx, async (tx, role, fx) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:publish', version);
        if (post.status !== 'draft' && post.status !== 'scheduled') {
          throw conflict('not_a_draft', `Only drafts can be scheduled; this ${type} is ${post.status}`);
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
        fx.recorded = true;
        return one(tx, ctx.tenantId, row);
      });
    },

    unschedule: (ctx, id, version) =>
      write(ctx, async (tx, role) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:publish', version);
        if (post.status !== 'scheduled') {
          throw conflict('not_scheduled', `Only scheduled ${type}s can be unscheduled; this one is ${post.status}`);
        }
        const row = await repo.updateIfVersion(tx, ctx.tenantId, id, post.version, {
          status: 'draft',
          publishedAt: null,
        });
        if (!row) throw stale(post.version + 1);
        return one(tx, ctx.tenantId, row);
      }),

    remove: (ctx, id, version) =>
      write(ctx, async (tx, role, fx) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:delete', version);
        if (!(await repo.deleteIfVersion(tx, ctx.tenantId, id, post.version))) throw stale(post.version + 1);
        await emit(tx, fx, ctx.tenantId, post, 'deleted');
        // Only a published post's going changes what readers see.
        fx.publicChange = post.status === 'published';
      }),

    revisions: (ctx, id) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        if (!(await repo.findById(tx, ctx.tenantId, type, id))) throw notFound(label);
        return (await repo.listRevisions(tx, ctx.tenantId, id)).map(toRevisionSummary);
      }),

    revision: (ctx, id, revisionId) =>
      inTenant(db, ctx, 'posts:read', async (tx) => {
        if (!(await repo.findById(tx, ctx.tenantId, type, id))) throw notFound(label);
        const r = await repo.findRevision(tx, ctx.tenantId, id, revisionId);
        if (!r) throw notFound('Revision');
        return { ...toRevisionSummary(r), snapshot: r.snapshot as RevisionSnapshot };
      }),

    restore: (ctx, id, revisionId, version) =>
      write(ctx, async (tx, role, fx) => {
        const post = await loadForWrite(tx, ctx, role, id, 'posts:update', version);
        const r = await repo.findRevision(tx, ctx.tenantId, id, revisionId);
        if (!r) throw notFound('Revision');
        const { tags, authors, ...fields } = r.snapshot as RevisionSnapshot;
        // Authors who have left the tenant since are dropped; if none is left, the authors stay.
        const members = await repo.membersAmong(tx, ctx.tenantId, authors);
        const stillMembers = authors.filter((a) => members.has(a));
        const patch: PostInput = { ...fields, tags, ...(stillMembers.length && { authors: stillMembers }) };
        return applyEdit(tx, ctx, role, fx, post, patch, 'restore');
      }),
  };
}
