import { z } from 'zod';
import { memberRoles } from '../../platform/db/schema.js';

const RESERVED = new Set(['www', 'api', 'admin', 'app', 'docs', 'static', 'assets', 'mail', 'status', 'health']);

/** A tenant slug is also its subdomain: DNS-label rules, lower case. */
export const tenantSlug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'must be lower-case letters, digits and inner hyphens')
  .refine((s) => !RESERVED.has(s), 'is reserved');

export const role = z.enum(memberRoles);

export const createTenantBody = z.object({ name: z.string().trim().min(1).max(120), slug: tenantSlug });

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

export const settingsBody = z
  .object({
    title: z.string().trim().max(200).optional(),
    description: z.string().trim().max(2000).optional(),
    lang: z
      .string()
      .regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'must be a BCP 47 language tag such as en or pt-BR')
      .optional(),
    timezone: z.string().refine(isTimeZone, 'must be an IANA time zone such as Europe/Paris').optional(),
    logo: z
      .url({ protocol: /^https?$/ })
      .max(2_000)
      .optional(),
    icon: z
      .url({ protocol: /^https?$/ })
      .max(2_000)
      .optional(),
    coverImage: z
      .url({ protocol: /^https?$/ })
      .max(2_000)
      .optional(),
    accentColor: z
      .string()
      .regex(/^#[0-9a-fA-F]{6}$/, 'must be a hex colour such as #ff1a75')
      .optional(),
  })
  .strict();

export const tenant = z
  .object({
    id: z.uuid(),
    name: z.string(),
    slug: z.string(),
    settings: settingsBody,
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Tenant' });

export const tenantWithRole = tenant.extend({ role });

export const usage = z.object({
  posts: z.number().int(),
  publishedPosts: z.number().int(),
  members: z.number().int(),
  contentBytes: z.number().int().describe('Bytes of post text stored'),
  mediaBytes: z.number().int().describe('Bytes of uploaded media stored'),
});

export const member = z
  .object({ userId: z.uuid(), email: z.string(), name: z.string(), role, joinedAt: z.iso.datetime() })
  .meta({ id: 'Member' });

export const inviteBody = z.object({
  email: z
    .email()
    .max(254)
    .transform((e) => e.toLowerCase()),
  role,
});

export const inviteResult = z.discriminatedUnion('status', [
  z.object({ status: z.literal('added'), userId: z.uuid(), email: z.string(), role }),
  z.object({ status: z.literal('invited'), invitationId: z.uuid(), email: z.string(), role }),
]);

export const invitation = z.object({
  id: z.uuid(),
  email: z.string(),
  role,
  invitedBy: z.uuid().nullable(),
  createdAt: z.iso.datetime(),
});

export const tenantIdParams = z.object({ id: z.uuid() });
export const memberParams = z.object({ id: z.uuid(), userId: z.uuid() });
export const invitationParams = z.object({ id: z.uuid(), invitationId: z.uuid() });
