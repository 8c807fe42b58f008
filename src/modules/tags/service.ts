import slugify from 'slugify';
import type { Database, Executor, TenantContext } from '../../platform/db/index.js';
import type { TagVisibility } from '../../platform/db/schema.js';
import { badRequest, conflict, isUniqueViolation, notFound } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import { type ContentEventName, recordContentEvent } from '../delivery/events.js';
import type { ContentVersions } from '../delivery/versions.js';
import type { Outbox } from '../jobs/outbox.js';
import * as repo from './repository.js';

/**
 * A tag's slug from its name: lower-cased and hyphenated ("Engineering Notes" →
 * engineering-notes). Internal tags (`#name`) get `hash-name`, as Ghost does.
 */
export function tagSlugOf(name: string): string {
  const internal = name.startsWith('#');
  const slug = slugify(internal ? `hash-${name.slice(1)}` : name, { lower: true, strict: true, trim: true });
  return slug.replace(/-+/g, '-').replace(/^-|-$/g, '') || 'tag';
}

const visibilityOf = (name: string): TagVisibility => (name.startsWith('#') ? 'internal' : 'public');

const toTagDto = (t: repo.TagRow) => ({
  id: t.id,
  name: t.name,
  slug: t.slug,
  description: t.description,
  visibility: t.visibility,
  postCount: t.postCount ?? 0,
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
});

const slugTaken = () => conflict('slug_taken', 'Another tag in this tenant already has this slug');

export function createTagsService(deps: { db: Database; outbox: Outbox; versions: ContentVersions }) {
  const { db, outbox } = deps;

  /** A tag write with its event in the same transaction; then readers see it at once. */
  async function write<T>(
    ctx: TenantContext,
    event: 'created' | 'updated' | 'deleted',
    fn: (tx: Executor) => Promise<{ result: T; tag: { id: string; slug: string } }>,
  ): Promise<T> {
    const { result } = await inTenant(db, ctx, 'tags:manage', async (tx) => {
      const out = await fn(tx);
      await recordContentEvent(outbox, tx, {
        event: `tag.${event}` as ContentEventName,
        tenantId: ctx.tenantId,
        resource: { type: 'tag', id: out.tag.id, slug: out.tag.slug },
      });
      return out;
    });
    outbox.committed();
    await deps.versions.bump(ctx.tenantId).catch(() => undefined);
    return result;
  }

  return {
    list: (ctx: TenantContext) =>
      inTenant(db, ctx, 'tags:read', async (tx) => (await repo.listTags(tx, ctx.tenantId)).map(toTagDto)),

    get: (ctx: TenantContext, id: string) =>
      inTenant(db, ctx, 'tags:read', async (tx) => {
        const t = await repo.findTag(tx, ctx.tenantId, id);
        if (!t) throw notFound('Tag');
        return toTagDto(t);
      }),

    create: (
      ctx: TenantContext,
      input: { name: string; slug?: string; description?: string | null; visibility?: TagVisibility },
    ) =>
      write(ctx, 'created', async (tx) => {
        try {
          const row = await repo.insertTag(tx, {
            tenantId: ctx.tenantId,
            name: input.name,
            slug: input.slug ?? tagSlugOf(input.name),
            description: input.description ?? null,
            visibility: input.visibility ?? visibilityOf(input.name),
          });
          return { result: toTagDto({ ...row, postCount: 0 }), tag: row };
        } catch (err) {
          if (isUniqueViolation(err, 'tags_tenant_slug_key')) throw slugTaken();
          throw err;
        }
      }),

    update: (
      ctx: TenantContext,
      id: string,
      patch: { name?: string; slug?: string; description?: string | null; visibility?: TagVisibility },
    ) =>
      write(ctx, 'updated', async (tx) => {
        if (Object.keys(patch).length === 0) throw badRequest('empty_patch', 'Send at least one field to change');
        try {
          if (!(await repo.updateTag(tx, ctx.tenantId, id, patch))) throw notFound('Tag');
          const tag = (await repo.findTag(tx, ctx.tenantId, id))!;
          return { result: toTagDto(tag), tag };
        } catch (err) {
          if (isUniqueViolation(err, 'tags_tenant_slug_key')) throw slugTaken();
          throw err;
        }
      }),

    /** Deleting a tag takes it off every post; the posts stay. */
    remove: (ctx: TenantContext, id: string) =>
      write(ctx, 'deleted', async (tx) => {
        const tag = await repo.deleteTag(tx, ctx.tenantId, id);
        if (!tag) throw notFound('Tag');
        return { result: undefined, tag };
      }),

    /**
     * Inside a post write: gives the post these tags (names, in order), creating the ones the
     * tenant does not have. Names that make the same slug are one tag; the first spelling wins.
     */
    async setPostTags(tx: Executor, tenantId: string, postId: string, names: string[]) {
      const bySlug = new Map<string, { name: string; slug: string; visibility: TagVisibility }>();
      for (const raw of names) {
        const name = raw.trim();
        const slug = tagSlugOf(name);
        if (!bySlug.has(slug)) bySlug.set(slug, { name, slug, visibility: visibilityOf(name) });
      }
      const ids = await repo.ensureTags(tx, tenantId, [...bySlug.values()]);
      await repo.setPostTags(
        tx,
        tenantId,
        postId,
        [...bySlug.keys()].map((slug) => ids.get(slug)!),
      );
    },
  };
}

export type TagsService = ReturnType<typeof createTagsService>;
