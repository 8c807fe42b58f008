import type { Executor } from '../db/index.js';
import type { PostStatus, PostType } from '../db/schema.js';

/**
 * The search port: full-text search over a tenant's posts and pages. Callers (the search
 * service) know only this interface; the adapter is picked in the composition root.
 *
 * - `postgres` (./postgres.ts): PostgreSQL full-text search on `posts.search_vector`, which
 *   triggers keep current in the transaction of every write (drizzle/0007_content_model.sql),
 *   plus trigram title matching for typos. Identical on PostgreSQL and PGlite.
 * - An external engine (Meilisearch, Typesense...) implements the same interface: it ignores
 *   `scope.tx` and filters its index by `scope.tenantId` (and by `publicOnly`/`types`), and is
 *   fed from the content events the outbox already carries (post.published, post.updated...),
 *   so no caller changes. Its results then trail the writes by the relay's delay.
 */

/** Longest query text an engine receives (longer input is cut); the routes reject longer ones. */
export const MAX_QUERY_LENGTH = 200;
/** Most hits one call returns. */
export const MAX_LIMIT = 50;
/** Deepest offset (deep pages of a ranked list cost the whole ranking and help no one). */
export const MAX_OFFSET = 10_000;

export type SearchableType = PostType;

/** The query as engines take it: no control characters (PostgreSQL rejects NUL), trimmed, bounded. */
export function normalizeQuery(q: string): string {
  return q
    .replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, MAX_QUERY_LENGTH)
    .trim();
}

/** Where a search runs: the tenant, and a transaction already inside it (row-level security on). */
export interface SearchScope {
  tenantId: string;
  /**
   * An executor inside `db.withTenant(...)` for `tenantId`: the Postgres adapter queries through
   * it (so the tenant wall applies); an external engine ignores it.
   */
  tx: Executor;
}

export interface SearchQuery {
  /**
   * Web-search syntax, as `websearch_to_tsquery` reads it: words (all must match, stemmed in the
   * tenant's language), `"exact phrase"`, `-excluded`, `a or b`. Anything else is treated as
   * text: no input is an error.
   */
  q: string;
  /** 1..MAX_LIMIT. */
  limit: number;
  /** 0..MAX_OFFSET; default 0. */
  offset?: number;
  /** Readers: only what is published and whose publication time has come. Staff: every status. */
  publicOnly: boolean;
  /** Default: posts and pages. */
  types?: SearchableType[];
}

export interface SearchHit {
  id: string;
  type: SearchableType;
  title: string;
  slug: string;
  /** The custom excerpt, else one derived from the body (as readers see it); plain text. */
  excerpt: string;
  /**
   * Fragments of the body around the matches, as HTML: the matched words in `<mark>…</mark>`,
   * everything else escaped (`<`, `>`, `&`, quotes), so it is safe to insert as markup. When the
   * body holds no match (a title or tag hit), its beginning.
   */
  snippet: string;
  /**
   * `text`: the query matched the document. `fuzzy`: no full-text match, but the title is close
   * to the query's words (typo tolerance); these come after every `text` hit.
   */
  match: 'text' | 'fuzzy';
  /**
   * Relevance, higher first, comparable between hits of the same `match` kind (text: the
   * weighted rank, title > excerpt and tags > body; fuzzy: the title's word similarity, 0..1).
   */
  rank: number;
  status: PostStatus;
  publishedAt: Date | null;
}

export interface SearchResult {
  /** In order: text hits by rank, then fuzzy hits by similarity; ties newest first. */
  hits: SearchHit[];
  /** Every hit the query has (text and fuzzy), beyond this page. */
  total: number;
}

export interface SearchEngine {
  /** Which adapter ('postgres', 'meilisearch'...), for logs and health. */
  readonly kind: string;
  search(scope: SearchScope, query: SearchQuery): Promise<SearchResult>;
}
