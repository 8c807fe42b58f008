import { type SQL, sql } from 'drizzle-orm';
import { memberships, postAuthors, posts, postTags, tags, users } from '../../platform/db/schema.js';
import type { NqlFields } from './nql.js';

/**
 * What readers may filter and order on: Ghost's field names mapped to SQL. Nothing else reaches
 * a query (an unknown field is a 400). Tags are public tags only, authors the post's authors.
 */
const hasTag = (pred: (col: SQL) => SQL, col: SQL) => sql`exists (
  select 1 from ${postTags} pt join ${tags} t on t.tenant_id = pt.tenant_id and t.id = pt.tag_id
   where pt.tenant_id = ${posts.tenantId} and pt.post_id = ${posts.id} and t.visibility = 'public'
     and ${pred(col)})`;
const hasAuthor = (pred: (col: SQL) => SQL, col: SQL) => sql`exists (
  select 1 from ${postAuthors} pa
    join ${memberships} m on m.tenant_id = pa.tenant_id and m.user_id = pa.user_id
   where pa.tenant_id = ${posts.tenantId} and pa.post_id = ${posts.id} and ${pred(col)})`;

/** The first public tag's slug (Ghost's primary_tag), the first author's slug (primary_author). */
const primaryTagSlug = sql`(select t.slug from ${postTags} pt join ${tags} t on t.tenant_id = pt.tenant_id and t.id = pt.tag_id
   where pt.tenant_id = ${posts.tenantId} and pt.post_id = ${posts.id} and t.visibility = 'public'
   order by pt.sort_order limit 1)`;
const primaryAuthorSlug = sql`(select m.slug from ${postAuthors} pa
    join ${memberships} m on m.tenant_id = pa.tenant_id and m.user_id = pa.user_id
   where pa.tenant_id = ${posts.tenantId} and pa.post_id = ${posts.id} order by pa.sort_order limit 1)`;

const tagSlug = { type: 'string', some: (p: (col: SQL) => SQL) => hasTag(p, sql`t.slug`) } as const;
const authorSlug = { type: 'string', some: (p: (col: SQL) => SQL) => hasAuthor(p, sql`m.slug`) } as const;

export const postFields: NqlFields = {
  id: { type: 'uuid', column: sql`${posts.id}` },
  uuid: { type: 'uuid', column: sql`${posts.id}` },
  slug: { type: 'string', column: sql`${posts.slug}` },
  title: { type: 'string', column: sql`${posts.title}` },
  featured: { type: 'boolean', column: sql`${posts.featured}` },
  feature_image: { type: 'string', column: sql`${posts.featureImage}` },
  custom_excerpt: { type: 'string', column: sql`${posts.excerpt}` },
  canonical_url: { type: 'string', column: sql`${posts.canonicalUrl}` },
  reading_time: { type: 'number', column: sql`${posts.readingTime}` },
  published_at: { type: 'date', column: sql`${posts.publishedAt}` },
  created_at: { type: 'date', column: sql`${posts.createdAt}` },
  updated_at: { type: 'date', column: sql`${posts.updatedAt}` },
  // Everything readers see is public and published: these match or not, as in Ghost.
  visibility: { type: 'string', column: sql`'public'::text` },
  status: { type: 'string', column: sql`${posts.status}` },
  tag: tagSlug,
  tags: tagSlug,
  'tags.slug': tagSlug,
  'tags.name': { type: 'string', some: (p) => hasTag(p, sql`t.name`) },
  'tags.id': { type: 'uuid', some: (p) => hasTag(p, sql`t.id`) },
  primary_tag: { type: 'string', column: primaryTagSlug },
  'primary_tag.slug': { type: 'string', column: primaryTagSlug },
  author: authorSlug,
  authors: authorSlug,
  'authors.slug': authorSlug,
  'authors.id': { type: 'uuid', some: (p) => hasAuthor(p, sql`pa.user_id`) },
  primary_author: { type: 'string', column: primaryAuthorSlug },
  'primary_author.slug': { type: 'string', column: primaryAuthorSlug },
};

export const tagFields: NqlFields = {
  id: { type: 'uuid', column: sql`${tags.id}` },
  slug: { type: 'string', column: sql`${tags.slug}` },
  name: { type: 'string', column: sql`${tags.name}` },
  description: { type: 'string', column: sql`${tags.description}` },
  visibility: { type: 'string', column: sql`${tags.visibility}::text` },
  created_at: { type: 'date', column: sql`${tags.createdAt}` },
  updated_at: { type: 'date', column: sql`${tags.updatedAt}` },
};

export const authorFields: NqlFields = {
  id: { type: 'uuid', column: sql`${memberships.userId}` },
  slug: { type: 'string', column: sql`${memberships.slug}` },
  name: { type: 'string', column: sql`${users.name}` },
  location: { type: 'string', column: sql`${memberships.location}` },
  website: { type: 'string', column: sql`${memberships.website}` },
};

/** Ghost's `order` fields, per resource (an id tie-break is always added). */
export const postOrder: Record<string, SQL> = {
  published_at: sql`${posts.publishedAt}`,
  created_at: sql`${posts.createdAt}`,
  updated_at: sql`${posts.updatedAt}`,
  title: sql`${posts.title}`,
  slug: sql`${posts.slug}`,
  featured: sql`${posts.featured}`,
  reading_time: sql`${posts.readingTime}`,
};
export const tagOrder: Record<string, SQL> = {
  name: sql`${tags.name}`,
  slug: sql`${tags.slug}`,
  created_at: sql`${tags.createdAt}`,
  updated_at: sql`${tags.updatedAt}`,
};
export const authorOrder: Record<string, SQL> = {
  name: sql`${users.name}`,
  slug: sql`${memberships.slug}`,
};
