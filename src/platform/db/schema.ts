// Timestamps have millisecond precision so they round-trip exactly through JavaScript Dates (cursors).
import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
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

/** `scheduled`: publishedAt is in the future and the job platform publishes it then. */
export const postStatuses = ['draft', 'scheduled', 'published', 'archived'] as const;
export type PostStatus = (typeof postStatuses)[number];
export const postStatus = pgEnum('post_status', postStatuses);

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
};

export interface TenantSettings {
  title?: string;
  description?: string;
  lang?: string;
  timezone?: string;
}

export const tenants = pgTable('tenants', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  slug: text('slug').notNull().unique('tenants_slug_key'),
  settings: jsonb('settings').$type<TenantSettings>().notNull().default({}),
  ...timestamps,
});

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Stored lower-cased; unique. */
    email: text('email').notNull(),
    name: text('name').notNull(),
    passwordHash: text('password_hash').notNull(),
    /** Operators of the deployment (job dashboards, every tenant's jobs); set by `npm run admin:grant`. */
    platformAdmin: boolean('platform_admin').notNull().default(false),
    ...timestamps,
  },
  (t) => [uniqueIndex('users_email_key').on(t.email)],
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
    ...timestamps,
  },
  (t) => [
    primaryKey({ name: 'memberships_pkey', columns: [t.tenantId, t.userId] }),
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
    excerpt: text('excerpt'),
    status: postStatus('status').notNull().default('draft'),
    publishedAt: timestamp('published_at', { withTimezone: true, mode: 'date', precision: 3 }),
    version: integer('version').notNull().default(1),
    ...timestamps,
  },
  (t) => [
    primaryKey({ name: 'posts_pkey', columns: [t.tenantId, t.id] }),
    uniqueIndex('posts_tenant_slug_key').on(t.tenantId, t.slug),
    // The list queries: newest first, optionally by status or author, or by publication date.
    index('posts_tenant_created_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index('posts_tenant_status_created_idx').on(t.tenantId, t.status, t.createdAt.desc(), t.id.desc()),
    index('posts_tenant_author_created_idx').on(t.tenantId, t.authorId, t.createdAt.desc(), t.id.desc()),
    index('posts_tenant_published_idx').on(t.tenantId, t.publishedAt.desc().nullsLast(), t.id.desc()),
    index('posts_tenant_status_published_idx').on(t.tenantId, t.status, t.publishedAt.desc().nullsLast(), t.id.desc()),
    // For the author foreign key (deleting or merging a user).
    index('posts_author_id_idx').on(t.authorId),
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
