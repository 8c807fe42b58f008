import { randomUUID } from 'node:crypto';
import { deriveExcerpt } from '../posts/render.js';
import type { PublicAuthorRow, PublicPostRow, PublicTagRow } from './repository.js';

/**
 * Ghost's Content API shapes (v5): field names, nulls where Quire has no such thing, and the
 * error envelope. This surface follows Ghost's contract instead of Quire's own envelope, so
 * existing Ghost clients and static-site starters read a Quire tenant unchanged.
 */

export type GhostErrorType =
  | 'BadRequestError'
  | 'UnauthorizedError'
  | 'NoPermissionError'
  | 'NotFoundError'
  | 'ValidationError'
  | 'TooManyRequestsError'
  | 'InternalServerError';

const statusOf: Record<GhostErrorType, number> = {
  BadRequestError: 400,
  UnauthorizedError: 401,
  NoPermissionError: 403,
  NotFoundError: 404,
  ValidationError: 422,
  TooManyRequestsError: 429,
  InternalServerError: 500,
};

export class GhostError extends Error {
  readonly statusCode: number;
  constructor(
    readonly type: GhostErrorType,
    message: string,
    readonly context: string | null = null,
    readonly property: string | null = null,
  ) {
    super(message);
    this.statusCode = statusOf[type];
  }
}

export const ghostErrorBody = (e: GhostError) => ({
  errors: [
    {
      message: e.message,
      context: e.context,
      type: e.type,
      details: null,
      property: e.property,
      help: null,
      code: null,
      id: randomUUID(),
      ghostErrorCode: null,
    },
  ],
});

export interface Site {
  id: string;
  /** The publication's own address, no trailing slash. */
  url: string;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function ghostTag(t: PublicTagRow | (PublicTagRow & { postCount?: number }), site: Site) {
  return {
    id: t.id,
    name: t.name,
    slug: t.slug,
    description: t.description,
    feature_image: null,
    visibility: t.visibility,
    og_image: null,
    og_title: null,
    og_description: null,
    twitter_image: null,
    twitter_title: null,
    twitter_description: null,
    meta_title: null,
    meta_description: null,
    codeinjection_head: null,
    codeinjection_foot: null,
    canonical_url: null,
    accent_color: null,
    url: `${site.url}/tag/${t.slug}/`,
    ...(t.postCount !== undefined && { count: { posts: t.postCount } }),
  };
}

export function ghostAuthor(a: PublicAuthorRow, site: Site) {
  return {
    id: a.id,
    name: a.name,
    slug: a.slug,
    profile_image: a.profileImage,
    cover_image: a.coverImage,
    bio: a.bio,
    website: a.website,
    location: a.location,
    facebook: null,
    twitter: null,
    meta_title: null,
    meta_description: null,
    url: `${site.url}/author/${a.slug}/`,
    ...(a.postCount !== undefined && { count: { posts: a.postCount } }),
  };
}

export function ghostPost(
  p: PublicPostRow,
  site: Site,
  formats: { html: boolean; plaintext: boolean },
): Record<string, unknown> {
  // Tags and authors embedded in a post carry no counts (the post's own rows have none).
  const tags = p.tags?.map((t) => ghostTag({ ...t, createdAt: new Date(0), updatedAt: new Date(0) }, site));
  const authors = p.authors?.map((a) => ghostAuthor(a, site));
  return {
    id: p.id,
    uuid: p.id,
    title: p.title,
    slug: p.slug,
    ...(formats.html && { html: p.html }),
    ...(formats.plaintext && { plaintext: p.plaintext }),
    comment_id: p.id,
    feature_image: p.featureImage,
    feature_image_alt: p.featureImageAlt,
    feature_image_caption: p.featureImageCaption,
    featured: p.featured,
    visibility: 'public',
    created_at: iso(p.createdAt),
    updated_at: iso(p.updatedAt),
    published_at: iso(p.publishedAt),
    custom_excerpt: p.excerpt,
    codeinjection_head: null,
    codeinjection_foot: null,
    custom_template: null,
    canonical_url: p.canonicalUrl,
    ...(tags && { tags, primary_tag: tags[0] ?? null }),
    ...(authors && { authors, primary_author: authors[0] ?? null }),
    url: `${site.url}/${p.slug}/`,
    excerpt: p.excerpt ?? deriveExcerpt(p.plaintext),
    reading_time: p.readingTime,
    access: true,
    comments: false,
    og_image: p.ogImage,
    og_title: p.ogTitle,
    og_description: p.ogDescription,
    twitter_image: p.twitterImage,
    twitter_title: p.twitterTitle,
    twitter_description: p.twitterDescription,
    meta_title: p.metaTitle,
    meta_description: p.metaDescription,
    email_subject: null,
    frontmatter: null,
    ...(p.type === 'page' && { show_title_and_feature_image: true }),
  };
}

/** `fields=title,url`: only those (plus what `include` asked for, as Ghost does). */
export function pickFields<T extends Record<string, unknown>>(o: T, fields: string[] | undefined, keep: string[]) {
  if (!fields?.length) return o;
  const out: Record<string, unknown> = {};
  for (const f of [...fields, ...keep]) if (f in o) out[f] = o[f];
  return out;
}

export interface Pagination {
  page: number;
  limit: number;
  pages: number;
  total: number;
  next: number | null;
  prev: number | null;
}

export function pagination(page: number, limit: number, total: number): Pagination {
  const pages = Math.max(1, Math.ceil(total / limit));
  return { page, limit, pages, total, next: page < pages ? page + 1 : null, prev: page > 1 ? page - 1 : null };
}
