import { z } from 'zod';
import { memberRoles } from '../../platform/db/schema.js';

const webUrl = z
  .url({ protocol: /^https?$/ })
  .max(2_000)
  .nullable();

export const authorSlug = z
  .string()
  .min(1)
  .max(80)
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lower-case letters and digits separated by single hyphens');

export const updateProfileBody = z
  .object({
    slug: authorSlug.optional(),
    bio: z.string().trim().max(2_000).nullable().optional(),
    profileImage: webUrl.optional(),
    coverImage: webUrl.optional(),
    website: webUrl.optional(),
    location: z.string().trim().max(150).nullable().optional(),
  })
  .strict();

export const userIdParams = z.object({ userId: z.uuid() });

export const profile = z
  .object({
    id: z.uuid().describe('The user id'),
    name: z.string(),
    slug: z.string(),
    bio: z.string().nullable(),
    profileImage: z.string().nullable(),
    coverImage: z.string().nullable(),
    website: z.string().nullable(),
    location: z.string().nullable(),
    role: z.enum(memberRoles),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'AuthorProfile' });
