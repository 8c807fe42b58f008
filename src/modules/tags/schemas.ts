import { z } from 'zod';
import { tagVisibilities } from '../../platform/db/schema.js';

export const tagName = z.string().trim().min(1).max(191);
export const tagSlug = z
  .string()
  .min(1)
  .max(191)
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lower-case letters and digits separated by single hyphens');

export const createTagBody = z
  .object({
    name: tagName,
    slug: tagSlug.optional().describe('Derived from the name when absent ("Engineering Notes" → engineering-notes)'),
    description: z.string().max(500).nullable().optional(),
    visibility: z.enum(tagVisibilities).optional().describe('Default: internal for names starting with #, else public'),
  })
  .strict();

export const updateTagBody = z
  .object({
    name: tagName.optional(),
    slug: tagSlug.optional(),
    description: z.string().max(500).nullable().optional(),
    visibility: z.enum(tagVisibilities).optional(),
  })
  .strict();

export const tagIdParams = z.object({ id: z.uuid() });

export const tag = z
  .object({
    id: z.uuid(),
    name: z.string(),
    slug: z.string(),
    description: z.string().nullable(),
    visibility: z.enum(tagVisibilities),
    postCount: z.number().int().describe('Posts with this tag, any status'),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Tag' });

/** How a post shows its tags: in order, the first is the primary tag. */
export const postTag = z.object({ id: z.uuid(), name: z.string(), slug: z.string() }).meta({ id: 'PostTag' });
