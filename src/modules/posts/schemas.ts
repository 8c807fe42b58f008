import { z } from 'zod';
import { postStatuses, postTypes } from '../../platform/db/schema.js';
import { postTag, tagName } from '../tags/schemas.js';

export const postSlug = z
  .string()
  .min(1)
  .max(120)
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lower-case letters and digits separated by single hyphens');

const title = z.string().trim().min(1).max(300);
const body = z.string().max(500_000);
const excerpt = z.string().max(1_000).nullable();
const version = z.number().int().min(1);

const postTags = z
  .array(tagName)
  .max(20)
  .describe('Tag names, in order (the first is the primary tag); missing tags are created');
const postAuthors = z
  .array(z.uuid())
  .min(1)
  .max(10)
  .describe('User ids of members of the tenant, in order (the first is the primary author)');

/** An absolute http(s) URL (images, canonical URL): never javascript: or data:. */
const webUrl = z
  .url({ protocol: /^https?$/ })
  .max(2_000)
  .nullable();
const shortText = (max: number) => z.string().trim().max(max).nullable();

/** Everything beyond title and body that staff edit (all optional; null clears). */
const contentFields = {
  customExcerpt: excerpt.optional().describe('Shown instead of the excerpt derived from the body'),
  excerpt: excerpt.optional().describe('Former name of customExcerpt (customExcerpt wins)'),
  featured: z.boolean().optional(),
  featureImage: webUrl.optional(),
  featureImageAlt: shortText(300).optional(),
  featureImageCaption: shortText(1_000).optional(),
  metaTitle: shortText(300).optional(),
  metaDescription: shortText(500).optional(),
  canonicalUrl: webUrl.optional(),
  ogImage: webUrl.optional(),
  ogTitle: shortText(300).optional(),
  ogDescription: shortText(500).optional(),
  twitterImage: webUrl.optional(),
  twitterTitle: shortText(300).optional(),
  twitterDescription: shortText(500).optional(),
  slug: postSlug.optional(),
  tags: postTags.optional(),
  authors: postAuthors.optional().describe('Defaults to you'),
};

export const createPostBody = z.object({ title, body, ...contentFields });

export const updatePostBody = z
  .object({
    title: title.optional(),
    body: body.optional(),
    ...contentFields,
    tags: postTags.optional().describe('Replaces the tags, in this order; [] removes them all'),
    authors: postAuthors.optional().describe('Replaces the authors, in this order'),
    version: version.optional().describe('The version you read; or send it as If-Match'),
  })
  .strict();

/** The body's customExcerpt (or its former name, excerpt) as the service's `excerpt`. */
export function toPostInput<T extends { customExcerpt?: string | null; excerpt?: string | null }>(body: T) {
  const { customExcerpt, excerpt, ...rest } = body;
  const custom = customExcerpt !== undefined ? customExcerpt : excerpt;
  return { ...rest, ...(custom !== undefined && { excerpt: custom }) };
}

// No body at all is fine (Fastify hands the validator null then), as is `{}` or `{ version }`.
export const transitionBody = z.object({ version: version.optional() }).strict().nullish();

export const scheduleBody = z
  .object({
    publishAt: z.iso.datetime({ offset: true }).describe('When to publish, e.g. 2026-12-01T09:00:00Z'),
    version: version.optional().describe('The version you read; or send it as If-Match'),
  })
  .strict();

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
  status: z.enum(postStatuses).optional(),
  author: z.uuid().optional().describe('Only posts by this author (user id)'),
  sort: z.enum(['created_at', 'published_at']).default('created_at').describe('Newest first'),
});

export const idParams = z.object({ id: z.uuid() });
export const revisionParams = z.object({ id: z.uuid(), revisionId: z.uuid() });
export const idOrSlugParams = z.object({
  idOrSlug: z.union([z.uuid(), postSlug]).describe('A post id or slug'),
});

export const ifMatchHeaders = z.object({
  'if-match': z
    .string()
    .regex(/^"\d+"$/, 'must be a quoted version such as "3"')
    .optional(),
});

export const postAuthorRef = z
  .object({ id: z.uuid(), name: z.string(), slug: z.string(), profileImage: z.string().nullable() })
  .meta({ id: 'PostAuthor' });

export const revision = z
  .object({
    id: z.uuid(),
    postVersion: z.number().int().describe('The version this revision produced'),
    reason: z.enum(['create', 'update', 'restore']),
    title: z.string(),
    createdBy: z.uuid().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'RevisionSummary' });
export const revisionDetail = revision
  .extend({
    snapshot: z
      .record(z.string(), z.unknown())
      .describe('Every editable field as it then was; tags by name, authors by user id'),
  })
  .meta({ id: 'Revision' });

export const post = z
  .object({
    id: z.uuid(),
    tenantId: z.uuid(),
    authorId: z.uuid().describe('The primary author'),
    title: z.string(),
    slug: z.string(),
    body: z.string().describe('Markdown, as written'),
    html: z.string().describe('The body rendered to sanitized HTML'),
    readingTime: z.number().int().describe('Minutes to read (275 words a minute)'),
    type: z.enum(postTypes),
    excerpt: z.string().describe('The custom excerpt, else one derived from the body'),
    customExcerpt: z.string().nullable(),
    featured: z.boolean(),
    featureImage: z.string().nullable(),
    featureImageAlt: z.string().nullable(),
    featureImageCaption: z.string().nullable(),
    metaTitle: z.string().nullable(),
    metaDescription: z.string().nullable(),
    canonicalUrl: z.string().nullable(),
    ogImage: z.string().nullable(),
    ogTitle: z.string().nullable(),
    ogDescription: z.string().nullable(),
    twitterImage: z.string().nullable(),
    twitterTitle: z.string().nullable(),
    twitterDescription: z.string().nullable(),
    tags: z.array(postTag),
    authors: z.array(postAuthorRef).describe('In order: the first is the primary author'),
    status: z.enum(postStatuses),
    publishedAt: z.iso.datetime().nullable(),
    version: z.number().int(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Post' });
