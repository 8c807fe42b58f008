import { z } from 'zod';
import { postStatuses } from '../../platform/db/schema.js';
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

export const createPostBody = z.object({
  title,
  body,
  excerpt: excerpt.optional(),
  slug: postSlug.optional(),
  tags: postTags.optional(),
});

export const updatePostBody = z
  .object({
    title: title.optional(),
    body: body.optional(),
    excerpt: excerpt.optional(),
    slug: postSlug.optional(),
    tags: postTags.optional().describe('Replaces the post’s tags, in this order; [] removes them all'),
    version: version.optional().describe('The version you read; or send it as If-Match'),
  })
  .strict();

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
export const idOrSlugParams = z.object({
  idOrSlug: z.union([z.uuid(), postSlug]).describe('A post id or slug'),
});

export const ifMatchHeaders = z.object({
  'if-match': z
    .string()
    .regex(/^"\d+"$/, 'must be a quoted version such as "3"')
    .optional(),
});

export const post = z
  .object({
    id: z.uuid(),
    tenantId: z.uuid(),
    authorId: z.uuid(),
    title: z.string(),
    slug: z.string(),
    body: z.string().describe('Markdown, as written'),
    html: z.string().describe('The body rendered to sanitized HTML'),
    readingTime: z.number().int().describe('Minutes to read (275 words a minute)'),
    excerpt: z.string().nullable(),
    tags: z.array(postTag),
    status: z.enum(postStatuses),
    publishedAt: z.iso.datetime().nullable(),
    version: z.number().int(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Post' });
