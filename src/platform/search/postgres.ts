import { type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../db/index.js';
import { posts } from '../db/schema.js';
import {
  MAX_LIMIT,
  MAX_OFFSET,
  normalizeQuery,
  type SearchEngine,
  type SearchHit,
  type SearchQuery,
  type SearchScope,
} from './index.js';

/**
 * PostgreSQL full-text search (PostgreSQL and PGlite alike) over `posts.search_vector`: the
 * weighted document the 0007 triggers keep current in every write's own transaction, in the
 * tenant's text search configuration (`quire_tenant_search_config`, from settings.lang).
 *
 * - Matching: `websearch_to_tsquery(cfg, q)` (words, "phrases", -exclusions, or), which accepts
 *   any text without error; all values are bound parameters.
 * - Ranking: `ts_rank` with weights D 0.1, C (body) 0.2, B (excerpt, tags) 0.4, A (title) 1.0.
 *   Unlike `ts_rank_cd`, whose score grows with every occurrence, `ts_rank` scores a term by its
 *   best-weighted occurrence plus a converging bonus for the others: a title hit outranks an
 *   excerpt or tag hit, which outranks a body hit however often the body repeats the word.
 * - Snippets: `ts_headline` over the body HTML-escaped in SQL first (so `<script>` comes back as
 *   `&lt;script&gt;`, and the parser sees no tags to drop); `<mark>`/`</mark>` are its only
 *   markup. Computed for the page's rows only, over the body's first SNIPPET_SOURCE_CHARS.
 * - Typos: when the full-text query finds fewer than FUZZY_BELOW documents, titles close to the
 *   query's words (pg_trgm `<%`, word similarity ≥ pg_trgm.word_similarity_threshold, 0.6 by
 *   default) follow the real matches, never the documents those already hold, never a document
 *   holding an -excluded word.
 *
 * Plans: under row-level security the planner cannot use posts_search_idx or
 * posts_title_trgm_idx directly: `@@` and `<%` are not LEAKPROOF, so they may not run as index
 * conditions before the tenant policy, and each search read every row of the tenant. The
 * candidates therefore come from two SECURITY DEFINER functions (drizzle/0008) that use the GIN
 * indexes as the owner role, bounded to the transaction's tenant; the match is re-checked on the
 * rows read under RLS, so they can only narrow what the tenant role sees.
 */

const FUZZY_BELOW = 5;
const SNIPPET_SOURCE_CHARS = 50_000;
const RANK_WEIGHTS = '{0.1,0.2,0.4,1.0}';
const HEADLINE_OPTIONS =
  'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=12, ShortWord=2, FragmentDelimiter=" … "';

interface Row {
  id: string;
  type: SearchHit['type'];
  title: string;
  slug: string;
  excerpt: string | null;
  lead: string;
  snippet: string | null;
  status: SearchHit['status'];
  published_at: Date | string | null;
  rank: number | string;
  total: number | string;
}

export interface PostgresSearchOptions {
  /** The excerpt readers see for a body with no custom excerpt (default: its first 300 characters). */
  excerptOf?: (plaintext: string) => string;
}

const rowsOf = async <T>(tx: Executor, q: SQL) => ((await tx.execute(q)) as unknown as { rows: T[] }).rows;

/** Text safe inside HTML, in SQL (ts_headline then works on the escaped text). */
const escapeHtml = (text: SQL) =>
  sql`replace(replace(replace(replace(replace(${text}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')`;

/**
 * The query's words for trigram title matching, and its excluded ones: the web-search syntax
 * read as websearch_to_tsquery reads it (quotes grouping a phrase, a leading - excluding the word
 * or phrase, `or` between alternatives). Words under three letters or digits carry no trigram
 * worth matching.
 */
export function fuzzyTermsOf(q: string): { wanted: string; excluded: string[] } {
  const wanted: string[] = [];
  const excluded: string[] = [];
  const re = /(-?)"([^"]*)"?|(\S+)/g;
  for (const m of q.matchAll(re)) {
    const phrase = m[2];
    let word = m[3];
    let negated = m[1] === '-';
    if (word?.startsWith('-')) {
      negated = true;
      word = word.replace(/^-+/, '');
    }
    const text = (phrase ?? word ?? '').replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
    if (!text || (!negated && phrase === undefined && /^or$/i.test(text))) continue;
    if (negated) excluded.push(phrase !== undefined ? `"${text}"` : text);
    else wanted.push(...text.split(' ').filter((w) => w.length >= 3));
  }
  return { wanted: wanted.join(' '), excluded };
}

export function createPostgresSearchEngine(opts: PostgresSearchOptions = {}): SearchEngine {
  const excerptOf = opts.excerptOf ?? ((plaintext: string) => plaintext.replace(/\s+/g, ' ').trim().slice(0, 300));

  /** The tenant's configuration and the parsed query, computed once per statement. */
  const parsed = (tenantId: string, q: string) =>
    sql`select c.cfg, websearch_to_tsquery(c.cfg, ${q}) as tsq
          from (select quire_tenant_search_config(${tenantId}::uuid) as cfg) c`;

  function filters(tenantId: string, query: SearchQuery): SQL {
    const parts = [sql`p.tenant_id = ${tenantId}::uuid`];
    if (query.publicOnly) parts.push(sql`p.status = 'published' and p.published_at <= now()`);
    if (query.types?.length) {
      parts.push(
        sql`p.type in (${sql.join(
          query.types.map((t) => sql`${t}`),
          sql`, `,
        )})`,
      );
    }
    return sql.join(parts, sql` and `);
  }

  /**
   * One page of one kind of hit, its snippets, and how many hits of that kind there are (a
   * window count over the whole match set, so one statement; a count of its own when the page
   * is past the end).
   */
  async function page(
    tx: Executor,
    tenantId: string,
    q: string,
    match: { candidates: SQL; where: SQL; score: SQL },
    offset: number,
    limit: number,
  ): Promise<{ rows: Row[]; total: number }> {
    const rows = await rowsOf<Row>(
      tx,
      sql`with s as materialized (${parsed(tenantId, q)}),
        hits as (
          select p.id, p.type, p.title, p.slug, p.excerpt, p.status, p.published_at,
                 ${match.score} as rank, count(*) over () as total
            from s
           -- The candidates come first, off the GIN index (a function in FROM runs once; in a
           -- WHERE subquery naming s it would be a correlated SubPlan run per row).
           cross join ${match.candidates} as m(id)
           join ${posts} p on p.tenant_id = ${tenantId}::uuid and p.id = m.id
           where ${match.where}
           order by rank desc, p.published_at desc nulls last, p.id desc
           limit ${Math.max(limit, 1)} offset ${offset})
        select h.*,
               left(p.plaintext, 600) as lead,
               ts_headline(s.cfg,
                 ${escapeHtml(sql`left(case when p.plaintext <> '' then p.plaintext else coalesce(p.excerpt, '') end, ${SNIPPET_SOURCE_CHARS})`)},
                 s.tsq, ${HEADLINE_OPTIONS}) as snippet
          from hits h
          join ${posts} p on p.tenant_id = ${tenantId}::uuid and p.id = h.id
          cross join s
         order by h.rank desc, h.published_at desc nulls last, h.id desc`,
    );
    if (rows.length) return { rows: rows.slice(0, limit), total: Number(rows[0]!.total) };
    if (offset === 0) return { rows: [], total: 0 };
    const [count] = await rowsOf<{ total: number | string }>(
      tx,
      sql`with s as materialized (${parsed(tenantId, q)})
          select count(*) as total from s cross join ${match.candidates} as m(id)
            join ${posts} p on p.tenant_id = ${tenantId}::uuid and p.id = m.id
           where ${match.where}`,
    );
    return { rows: [], total: Number(count?.total ?? 0) };
  }

  const toHit =
    (match: SearchHit['match']) =>
    (r: Row): SearchHit => ({
      id: r.id,
      type: r.type,
      title: r.title,
      slug: r.slug,
      excerpt: r.excerpt ?? excerptOf(r.lead),
      snippet: r.snippet ?? '',
      match,
      rank: Number(r.rank),
      status: r.status,
      publishedAt: r.published_at === null ? null : new Date(r.published_at),
    });

  return {
    kind: 'postgres',
    async search(scope: SearchScope, query: SearchQuery) {
      const q = normalizeQuery(query.q);
      const limit = Math.min(Math.max(Math.trunc(query.limit), 1), MAX_LIMIT);
      const offset = Math.min(Math.max(Math.trunc(query.offset ?? 0), 0), MAX_OFFSET);
      if (!q) return { hits: [], total: 0 };
      const { tx, tenantId } = scope;
      const where = filters(tenantId, query);

      const text = await page(
        tx,
        tenantId,
        q,
        {
          // Candidates off the GIN index (drizzle/0008: `@@` is no index condition under RLS),
          // the match re-checked on the rows read under RLS.
          candidates: sql`quire_search_matches(s.tsq)`,
          where: sql`${where} and p.search_vector @@ s.tsq`,
          score: sql`ts_rank(${RANK_WEIGHTS}::float4[], p.search_vector, s.tsq)`,
        },
        offset,
        limit,
      );
      const hits = text.rows.map(toHit('text'));
      let total = text.total;

      const terms = fuzzyTermsOf(q);
      if (text.total < FUZZY_BELOW && terms.wanted) {
        const excluded = terms.excluded.length
          ? sql` and not coalesce(p.search_vector @@ websearch_to_tsquery(s.cfg, ${terms.excluded.join(' or ')}), false)`
          : sql``;
        const fuzzy = await page(
          tx,
          tenantId,
          q,
          {
            candidates: sql`quire_search_similar_titles(${terms.wanted})`,
            where: sql`${where} and ${terms.wanted} <% p.title
              and not coalesce(p.search_vector @@ s.tsq, false)${excluded}`,
            score: sql`word_similarity(${terms.wanted}, p.title)`,
          },
          Math.max(0, offset - text.total),
          limit - hits.length,
        );
        hits.push(...fuzzy.rows.map(toHit('fuzzy')));
        total += fuzzy.total;
      }
      return { hits, total };
    },
  };
}
