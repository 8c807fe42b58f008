// Timestamps have millisecond precision so they round-trip exactly through JavaScript Dates (cursors).
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  customType,
  foreignKey,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/*
 * Every tenant-owned table carries tenant_id, and its primary key, unique keys and foreign
 * keys lead with it, so the schema can be distributed by tenant (Citus) unchanged.
 * `users` and `refresh_tokens` are global (a person can belong to several organizations);
 * they never run under the tenant role. Row-level security lives in drizzle/0001_*.sql.
 */

export const memberRoles = ['owner', 'admin', 'editor', 'author', 'viewer'] as const;
export type MemberRole = (typeof memberRoles)[number];
export const memberRole = pgEnum('member_role', memberRoles);

/**
 * `scheduled`: publishedAt is in the future and the job platform publishes it then.
 * Status and type are text with a CHECK, not enums: text equality is LEAKPROOF, so under
 * row-level security the planner can use `status = …` and `type = …` as index conditions (an
 * enum's equality is not, and every filtered list then sorted the tenant's rows).
 */
export const postStatuses = ['draft', 'scheduled', 'published', 'archived'] as const;
export type PostStatus = (typeof postStatuses)[number];

/** Posts and pages are one model (Ghost's): pages are listed apart and stay out of feeds. */
export const postTypes = ['post', 'page'] as const;
export type PostType = (typeof postTypes)[number];

/** Maintained by triggers (drizzle/0007_*.sql); never written by the app. */
const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
};

export interface TenantSettings {
  title?: string;
  description?: string;
  lang?: string;
  timezone?: string;
  logo?: string;
  icon?: string;
  coverImage?: string;
  accentColor?: string;
}

export const tenants = pgTable('tenants', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  slug: text('slug').notNull().unique('tenants_slug_key'),
  settings: jsonb('settings').$type<TenantSettings>().notNull().default({}),
  /** Staff must sign in with a second factor (TOTP) to act in this tenant. */
  requireMfa: boolean('require_mfa').notNull().default(false),
  ...timestamps,
});

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Stored lower-cased; unique. */
    email: text('email').notNull(),
    name: text('name').notNull(),
    /** Null for accounts created through single sign-on (no password until they set one by reset). */
    passwordHash: text('password_hash'),
    /** Operators of the deployment (job dashboards, every tenant's jobs); set by `npm run admin:grant`. */
    platformAdmin: boolean('platform_admin').notNull().default(false),
    /** Set when the user follows the link emailed at registration (or resets their password). */
    emailVerifiedAt: timestamp('email_verified_at', { withTimezone: true, mode: 'date', precision: 3 }),
    /** Consecutive failed sign-ins; the account locks for a while at a threshold (reset on success). */
    failedLogins: integer('failed_logins').notNull().default(0),
    lockedUntil: timestamp('locked_until', { withTimezone: true, mode: 'date', precision: 3 }),
    /** TOTP secret, AES-256-GCM sealed with a key from the environment; set at enrolment. */
    totpSecret: text('totp_secret'),
    /** Set when enrolment is confirmed with a first code: from then on sign-in needs a second factor. */
    totpEnabledAt: timestamp('totp_enabled_at', { withTimezone: true, mode: 'date', precision: 3 }),
    /** The last accepted TOTP time step: a code is accepted once (RFC 6238 §5.2). */
    totpLastStep: bigint('totp_last_step', { mode: 'number' }),
    ...timestamps,
  },
  (t) => [uniqueIndex('users_email_key').on(t.email)],
);

export const authTokenPurposes = ['verify-email', 'reset-password'] as const;
export type AuthTokenPurpose = (typeof authTokenPurposes)[number];

/**
 * Single-use tokens sent by email (verify an address, reset a password). Global like refresh
 * tokens; stored as SHA-256, the token itself only ever in the email.
 */
export const authTokens = pgTable(
  'auth_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    purpose: text('purpose', { enum: authTokenPurposes }).notNull(),
    tokenHash: text('token_hash').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, mode: 'date', precision: 3 }),
    createdAt: timestamps.createdAt,
  },
  (t) => [
    uniqueIndex('auth_tokens_token_hash_key').on(t.tokenHash),
    index('auth_tokens_user_id_idx').on(t.userId),
    index('auth_tokens_expires_at_idx').on(t.expiresAt),
    check('auth_tokens_purpose_check', sql`${t.purpose} in ('verify-email', 'reset-password')`),
  ],
);

export const memberships = pgTable(
  'memberships',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: memberRole('role').notNull(),
    /**
     * The member's public author profile in this tenant (the name is the user's). The slug is
     * filled by a trigger from the name when not given ('' or absent; drizzle/0007_*.sql).
     */
    slug: text('slug').notNull().default(''),
    bio: text('bio'),
    profileImage: text('profile_image'),
    coverImage: text('cover_image'),
    website: text('website'),
    location: text('location'),
    ...timestamps,
  },
  (t) => [
    primaryKey({ name: 'memberships_pkey', columns: [t.tenantId, t.userId] }),
    uniqueIndex('memberships_tenant_slug_key').on(t.tenantId, t.slug),
    index('memberships_user_id_idx').on(t.userId),
    index('memberships_tenant_role_idx').on(t.tenantId, t.role),
  ],
);

export const invitations = pgTable(
  'invitations',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull().defaultRandom(),
    email: text('email').notNull(),
    role: memberRole('role').notNull(),
    invitedBy: uuid('invited_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: timestamps.createdAt,
    acceptedAt: timestamp('accepted_at', { withTimezone: true, mode: 'date', precision: 3 }),
  },
  (t) => [
    primaryKey({ name: 'invitations_pkey', columns: [t.tenantId, t.id] }),
    uniqueIndex('invitations_tenant_email_pending_key').on(t.tenantId, t.email).where(sql`accepted_at IS NULL`),
    index('invitations_email_idx').on(t.email),
    index('invitations_invited_by_idx').on(t.invitedBy),
  ],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** All tokens descended from one login share a family; reuse of a rotated one revokes it. */
    familyId: uuid('family_id').notNull(),
    /** SHA-256 of the token: the token itself is never stored. */
    tokenHash: text('token_hash').notNull(),
    /** Tenant the session was opened for (the `tid` claim of its access tokens), if any. */
    tenantId: uuid('tenant_id'),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull(),
    createdAt: timestamps.createdAt,
    rotatedAt: timestamp('rotated_at', { withTimezone: true, mode: 'date', precision: 3 }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date', precision: 3 }),
    /** How the session was opened (`pwd`, `otp`, `sso`…): carried to every access token as `amr`. */
    amr: text('amr').array().notNull().default(sql`'{pwd}'::text[]`),
    /** Where the token was issued (sign-in or refresh): shown to the user in their sessions list. */
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [
    uniqueIndex('refresh_tokens_token_hash_key').on(t.tokenHash),
    index('refresh_tokens_user_id_idx').on(t.userId),
    index('refresh_tokens_family_id_idx').on(t.familyId),
    index('refresh_tokens_expires_at_idx').on(t.expiresAt),
  ],
);

export const posts = pgTable(
  'posts',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull().defaultRandom(),
    type: text('type', { enum: postTypes }).notNull().default('post'),
    /** The primary author (the first of post_authors), kept in step with it by the posts service. */
    authorId: uuid('author_id')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    title: text('title').notNull(),
    slug: text('slug').notNull(),
    /** Markdown, as written. */
    body: text('body').notNull(),
    /** Rendered from body on every save: sanitized HTML, plaintext, minutes to read. */
    html: text('html').notNull().default(''),
    plaintext: text('plaintext').notNull().default(''),
    readingTime: integer('reading_time').notNull().default(0),
    /** The custom excerpt; when null, readers get one derived from the plaintext. */
    excerpt: text('excerpt'),
    featured: boolean('featured').notNull().default(false),
    featureImage: text('feature_image'),
    featureImageAlt: text('feature_image_alt'),
    featureImageCaption: text('feature_image_caption'),
    metaTitle: text('meta_title'),
    metaDescription: text('meta_description'),
    canonicalUrl: text('canonical_url'),
    ogImage: text('og_image'),
    ogTitle: text('og_title'),
    ogDescription: text('og_description'),
    twitterImage: text('twitter_image'),
    twitterTitle: text('twitter_title'),
    twitterDescription: text('twitter_description'),
    status: text('status', { enum: postStatuses }).notNull().default('draft'),
    publishedAt: timestamp('published_at', { withTimezone: true, mode: 'date', precision: 3 }),
    /** Weighted document (title A, excerpt and tags B, body C) in the tenant's language; see 0007. */
    searchVector: tsvector('search_vector'),
    version: integer('version').notNull().default(1),
    ...timestamps,
  },
  (t) => [
    primaryKey({ name: 'posts_pkey', columns: [t.tenantId, t.id] }),
    // Slugs are unique across posts and pages, as in Ghost (one URL space per publication).
    uniqueIndex('posts_tenant_slug_key').on(t.tenantId, t.slug),
    // Staff lists: newest first, optionally by status or author.
    index('posts_tenant_type_created_idx').on(t.tenantId, t.type, t.createdAt.desc(), t.id.desc()),
    index('posts_tenant_type_status_created_idx').on(t.tenantId, t.type, t.status, t.createdAt.desc(), t.id.desc()),
    index('posts_tenant_author_created_idx').on(t.tenantId, t.authorId, t.createdAt.desc(), t.id.desc()),
    index('posts_tenant_type_published_idx').on(t.tenantId, t.type, t.publishedAt.desc().nullsLast(), t.id.desc()),
    // The public lists (published, newest publication first), also offset pages deep into a tenant.
    index('posts_tenant_type_status_published_idx').on(
      t.tenantId,
      t.type,
      t.status,
      t.publishedAt.desc().nullsLast(),
      t.id.desc(),
    ),
    check('posts_type_check', sql`${t.type} in ('post', 'page')`),
    check('posts_status_check', sql`${t.status} in ('draft', 'scheduled', 'published', 'archived')`),
    // The overdue-publication sweep across tenants: only the scheduled rows.
    index('posts_scheduled_due_idx').on(t.publishedAt).where(sql`status = 'scheduled'`),
    index('posts_search_idx').using('gin', t.searchVector),
    index('posts_title_trgm_idx').using('gin', sql`${t.title} gin_trgm_ops`),
    // For the author foreign key (deleting or merging a user).
    index('posts_author_id_idx').on(t.authorId),
  ],
);

/** A post's authors, in order: the first is its primary author. Members of the tenant only. */
export const postAuthors = pgTable(
  'post_authors',
  {
    tenantId: uuid('tenant_id').notNull(),
    postId: uuid('post_id').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    sortOrder: integer('sort_order').notNull(),
  },
  (t) => [
    primaryKey({ name: 'post_authors_pkey', columns: [t.tenantId, t.postId, t.userId] }),
    foreignKey({
      name: 'post_authors_post_fk',
      columns: [t.tenantId, t.postId],
      foreignColumns: [posts.tenantId, posts.id],
    }).onDelete('cascade'),
    // Posts of an author (filters, counts, the user foreign key).
    index('post_authors_tenant_user_idx').on(t.tenantId, t.userId),
    index('post_authors_user_id_idx').on(t.userId),
  ],
);

/**
 * Every content change of a post stores the editable state it produced (capped per post by
 * REVISIONS_PER_POST). Restoring one writes the post back and stores a new revision.
 */
export const postRevisions = pgTable(
  'post_revisions',
  {
    tenantId: uuid('tenant_id').notNull(),
    id: uuid('id').notNull().defaultRandom(),
    postId: uuid('post_id').notNull(),
    /** The post version this revision produced. */
    postVersion: integer('post_version').notNull(),
    /** What made it: create, update, restore. */
    reason: text('reason').notNull(),
    title: text('title').notNull(),
    /** Every editable field as it then was (body, excerpt, tags by name, authors by id, SEO...). */
    snapshot: jsonb('snapshot').$type<Record<string, unknown>>().notNull(),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: timestamps.createdAt,
  },
  (t) => [
    primaryKey({ name: 'post_revisions_pkey', columns: [t.tenantId, t.id] }),
    foreignKey({
      name: 'post_revisions_post_fk',
      columns: [t.tenantId, t.postId],
      foreignColumns: [posts.tenantId, posts.id],
    }).onDelete('cascade'),
    index('post_revisions_post_idx').on(t.tenantId, t.postId, t.createdAt.desc(), t.id.desc()),
    index('post_revisions_created_by_idx').on(t.createdBy),
  ],
);

export const tagVisibilities = ['public', 'internal'] as const;
export type TagVisibility = (typeof tagVisibilities)[number];
export const tagVisibility = pgEnum('tag_visibility', tagVisibilities);

/** A tenant's tags. Internal tags (names starting with `#`) organise content but are never public. */
export const tags = pgTable(
  'tags',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull().defaultRandom(),
    name: text('name').notNull(),
    slug: text('slug').notNull(),
    description: text('description'),
    visibility: tagVisibility('visibility').notNull().default('public'),
    ...timestamps,
  },
  (t) => [
    primaryKey({ name: 'tags_pkey', columns: [t.tenantId, t.id] }),
    uniqueIndex('tags_tenant_slug_key').on(t.tenantId, t.slug),
  ],
);

/** A post's tags, in order: the first is its primary tag. */
export const postTags = pgTable(
  'post_tags',
  {
    tenantId: uuid('tenant_id').notNull(),
    postId: uuid('post_id').notNull(),
    tagId: uuid('tag_id').notNull(),
    sortOrder: integer('sort_order').notNull(),
  },
  (t) => [
    primaryKey({ name: 'post_tags_pkey', columns: [t.tenantId, t.postId, t.tagId] }),
    foreignKey({
      name: 'post_tags_post_fk',
      columns: [t.tenantId, t.postId],
      foreignColumns: [posts.tenantId, posts.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'post_tags_tag_fk',
      columns: [t.tenantId, t.tagId],
      foreignColumns: [tags.tenantId, tags.id],
    }).onDelete('cascade'),
    // Posts of a tag (filters, counts, the tag foreign key).
    index('post_tags_tenant_tag_idx').on(t.tenantId, t.tagId),
  ],
);

/**
 * Content API keys: read-only access to one tenant's published content (Ghost's `?key=`).
 * Stored as SHA-256 with the last four characters as a hint; the key itself is shown once.
 */
export const contentKeys = pgTable(
  'content_keys',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull().defaultRandom(),
    name: text('name').notNull(),
    keyHash: text('key_hash').notNull(),
    keyHint: text('key_hint').notNull(),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: timestamps.createdAt,
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date', precision: 3 }),
  },
  (t) => [
    primaryKey({ name: 'content_keys_pkey', columns: [t.tenantId, t.id] }),
    // Global: a key names its tenant.
    uniqueIndex('content_keys_key_hash_key').on(t.keyHash),
    index('content_keys_created_by_idx').on(t.createdBy),
  ],
);

/**
 * Security-relevant events, per tenant (an event about a person, such as a sign-in, is recorded
 * in each tenant they belong to): who, from where, what, on what. Append-only for the app.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull().defaultRandom(),
    at: timestamp('at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
    action: text('action').notNull(),
    /** The user who acted (null: the system, or an unknown caller). No foreign key: the log outlives accounts. */
    actorUserId: uuid('actor_user_id'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    targetType: text('target_type'),
    targetId: text('target_id'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    primaryKey({ name: 'audit_log_pkey', columns: [t.tenantId, t.id] }),
    index('audit_log_tenant_at_idx').on(t.tenantId, t.at.desc(), t.id.desc()),
    index('audit_log_tenant_action_at_idx').on(t.tenantId, t.action, t.at.desc(), t.id.desc()),
  ],
);

/**
 * Transactional outbox: a write that must trigger work inserts a row here in its own
 * transaction; the relay (src/modules/jobs/outbox.ts) moves rows to the queue. `claimed_until`
 * lets a relay hold a batch without a transaction open across the enqueue; a relay that dies
 * lets the claim lapse and the rows are delivered again (the job id makes that a no-op).
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** Null for work that belongs to no tenant (a welcome email). */
    tenantId: uuid('tenant_id'),
    queue: text('queue').notNull(),
    name: text('name').notNull(),
    payload: jsonb('payload').notNull(),
    /** Becomes the job id: a second delivery of the same row is the same job. */
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: timestamps.createdAt,
    /** The job runs no earlier than this (a scheduled publication); null = at once. */
    runAt: timestamp('run_at', { withTimezone: true, mode: 'date', precision: 3 }),
    claimedUntil: timestamp('claimed_until', { withTimezone: true, mode: 'date', precision: 3 }),
    dispatchedAt: timestamp('dispatched_at', { withTimezone: true, mode: 'date', precision: 3 }),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
  },
  (t) => [
    uniqueIndex('outbox_idempotency_key_key').on(t.idempotencyKey),
    index('outbox_pending_idx').on(t.id).where(sql`dispatched_at is null`),
    index('outbox_dispatched_at_idx').on(t.dispatchedAt),
  ],
);

/**
 * Idempotent consumers: a handler's key is recorded when its effect is done, and a job that
 * arrives again with a recorded key is completed without running (a retry after a crash, an
 * outbox row delivered twice).
 */
export const processedJobs = pgTable(
  'processed_jobs',
  {
    idempotencyKey: text('idempotency_key').primaryKey(),
    queue: text('queue').notNull(),
    jobId: text('job_id').notNull(),
    processedAt: timestamp('processed_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('processed_jobs_processed_at_idx').on(t.processedAt)],
);

/** Ten single-use recovery codes per user with TOTP, stored as SHA-256 (80 random bits each). Global. */
export const recoveryCodes = pgTable(
  'recovery_codes',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, mode: 'date', precision: 3 }),
    createdAt: timestamps.createdAt,
  },
  (t) => [primaryKey({ name: 'recovery_codes_pkey', columns: [t.userId, t.codeHash] })],
);

/**
 * A sign-in waiting for its second factor: the password (or identity provider) was right, the
 * code is still to come. Single use, short-lived, a few attempts. Global.
 */
export const mfaChallenges = pgTable(
  'mfa_challenges',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    tenantId: uuid('tenant_id'),
    /** How the first factor was given (`pwd`, `sso`…). */
    amr: text('amr').array().notNull(),
    attempts: integer('attempts').notNull().default(0),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, mode: 'date', precision: 3 }),
    createdAt: timestamps.createdAt,
  },
  (t) => [
    uniqueIndex('mfa_challenges_token_hash_key').on(t.tokenHash),
    index('mfa_challenges_user_id_idx').on(t.userId),
  ],
);

export const apiKeyScopes = ['content:read', 'content:write', 'members:read', 'admin'] as const;
export type ApiKeyScope = (typeof apiKeyScopes)[number];

/**
 * Admin API keys for integrations: per tenant, scoped, stored as SHA-256, shown once. A key acts
 * for the member who created it and never beyond that member's current role.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull().defaultRandom(),
    name: text('name').notNull(),
    /** The key's first characters, to recognise it in a list. */
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    scopes: text('scopes').array().notNull(),
    createdBy: uuid('created_by')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** Requests a minute this key may make; null = the deployment default. */
    rateLimitPerMinute: integer('rate_limit_per_minute'),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date', precision: 3 }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date', precision: 3 }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date', precision: 3 }),
    createdAt: timestamps.createdAt,
  },
  (t) => [
    primaryKey({ name: 'api_keys_pkey', columns: [t.tenantId, t.id] }),
    uniqueIndex('api_keys_key_hash_key').on(t.keyHash),
    index('api_keys_created_by_idx').on(t.createdBy),
    check(
      'api_keys_scopes_check',
      sql`cardinality(${t.scopes}) > 0 and ${t.scopes} <@ array['content:read','content:write','members:read','admin']::text[]`,
    ),
  ],
);

/** A person's account at an identity provider (`google`, `github`, or `tenant:<id>` for an organization's own). */
export const userIdentities = pgTable(
  'user_identities',
  {
    provider: text('provider').notNull(),
    subject: text('subject').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    createdAt: timestamps.createdAt,
    lastLoginAt: timestamp('last_login_at', { withTimezone: true, mode: 'date', precision: 3 }),
  },
  (t) => [
    primaryKey({ name: 'user_identities_pkey', columns: [t.provider, t.subject] }),
    index('user_identities_user_id_idx').on(t.userId),
  ],
);

/** An organization's own OIDC identity provider. */
export const tenantSso = pgTable('tenant_sso', {
  tenantId: uuid('tenant_id')
    .primaryKey()
    .references(() => tenants.id, { onDelete: 'cascade' }),
  issuer: text('issuer').notNull(),
  clientId: text('client_id').notNull(),
  /** AES-256-GCM sealed with a key from the environment. */
  clientSecret: text('client_secret').notNull(),
  /** Members whose email is in one of the tenant's verified domains sign in only through it. */
  enforced: boolean('enforced').notNull().default(false),
  /** Role given to a person of a verified domain signing in for the first time; null = no automatic membership. */
  defaultRole: memberRole('default_role'),
  ...timestamps,
});

/** Email domains an organization claims; verified by a DNS TXT record. A domain is verified by one tenant at most. */
export const tenantDomains = pgTable(
  'tenant_domains',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    domain: text('domain').notNull(),
    verificationToken: text('verification_token').notNull(),
    verifiedAt: timestamp('verified_at', { withTimezone: true, mode: 'date', precision: 3 }),
    createdAt: timestamps.createdAt,
  },
  (t) => [
    primaryKey({ name: 'tenant_domains_pkey', columns: [t.tenantId, t.domain] }),
    uniqueIndex('tenant_domains_verified_domain_key').on(t.domain).where(sql`verified_at is not null`),
  ],
);

/** An OIDC sign-in in progress: state, nonce and PKCE verifier, single use, a few minutes. Global. */
export const oidcStates = pgTable(
  'oidc_states',
  {
    stateHash: text('state_hash').primaryKey(),
    /** `google`, `github`, or `tenant:<id>`. */
    provider: text('provider').notNull(),
    nonce: text('nonce').notNull(),
    codeVerifier: text('code_verifier').notNull(),
    /** `token` (JSON body) or `cookie` (refresh token in a cookie), as for password sign-in. */
    mode: text('mode').notNull().default('token'),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull(),
    createdAt: timestamps.createdAt,
  },
  (t) => [index('oidc_states_expires_at_idx').on(t.expiresAt)],
);
