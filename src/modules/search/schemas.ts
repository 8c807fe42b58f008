import { z } from 'zod';
import { postStatuses, postTypes } from '../../platform/db/schema.js';
import { MAX_LIMIT, MAX_OFFSET, MAX_QUERY_LENGTH } from '../../platform/search/index.js';

export const searchQuery = z.object({
  q: z
    .string()
    .trim()
    .min(1)
    .max(MAX_QUERY_LENGTH)
    .describe(
      'Web-search syntax in the tenant\'s language: words (all must match, stemmed), "exact phrase", -excluded, a or b. Close misspellings of title words still find the title.',
    ),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(20),
  offset: z.coerce.number().int().min(0).max(MAX_OFFSET).default(0),
  type: z.enum(postTypes).optional().describe('Only posts or only pages (default: both)'),
});

export const searchHit = z
  .object({
    id: z.uuid(),
    type: z.enum(postTypes),
    title: z.string(),
    slug: z.string(),
    excerpt: z.string().describe('The custom excerpt, else one derived from the body; plain text'),
    snippet: z
      .string()
      .describe('HTML: body fragments around the matches, matched words in <mark>…</mark>, everything else escaped'),
    match: z
      .enum(['text', 'fuzzy'])
      .describe('text: the query matched; fuzzy: a title close to the query (typos), after every text hit'),
    rank: z.number().describe('Relevance, higher first; comparable within one match kind'),
    status: z.enum(postStatuses),
    publishedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'SearchHit' });

export const searchResponse = z.object({
  data: z.array(searchHit),
  meta: z.object({ total: z.number().int().describe('Every hit of the query, beyond this page') }),
});

/** The Content API's search parameters (Ghost-style strings; `key` as on every Content API route). */
export const publicSearchQuery = z.object({
  key: z.string().max(64).optional(),
  q: z.string().max(MAX_QUERY_LENGTH).optional(),
  limit: z.string().max(10).optional(),
  page: z.string().max(10).optional(),
  type: z.string().max(20).optional(),
});
export type PublicSearchParams = z.infer<typeof publicSearchQuery>;
