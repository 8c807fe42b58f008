/**
 * The raw ceiling's query: Quire's default list (newest first, one extra row for the next
 * cursor), as the raw-pg baseline runs it. The order is spelled `DESC NULLS LAST` because that
 * is how the posts indexes are built (drizzle-kit's default); with plain `DESC` (NULLS FIRST) no
 * index matches and PostgreSQL reads and sorts every post of the tenant on each request. The
 * columns are NOT NULL, so both spellings return the same rows in the same order. Posts only
 * (`type = 'post'`), as the staff list since pages live in the same table: without it no index
 * leads with the tenant and the posts' order, and every request sorts the tenant's rows.
 */
export const RAW_LIST_SQL =
  "SELECT * FROM posts WHERE tenant_id = $1 AND type = 'post' ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT 21";

/** Published posts whose time has come; with `tagParam`, also featured and carrying that public tag. */
const contentWhere = (tagParam?: string) =>
  `p.tenant_id = $1 AND p.type = 'post' AND p.status = 'published' AND p.published_at <= now()` +
  (tagParam
    ? ` AND p.featured AND EXISTS (
    SELECT 1 FROM post_tags pt JOIN tags t ON t.tenant_id = pt.tenant_id AND t.id = pt.tag_id
     WHERE pt.tenant_id = p.tenant_id AND pt.post_id = p.id AND t.visibility = 'public' AND t.slug = ${tagParam})`
    : '');

const contentPage = (where: string) => `
SELECT p.id, p.type, p.title, p.slug, p.html, p.plaintext, p.excerpt, p.reading_time, p.featured,
       p.feature_image, p.feature_image_alt, p.feature_image_caption, p.meta_title, p.meta_description,
       p.canonical_url, p.og_image, p.og_title, p.og_description, p.twitter_image, p.twitter_title,
       p.twitter_description, p.published_at, p.created_at, p.updated_at,
       coalesce((SELECT json_agg(json_build_object('id', t.id, 'name', t.name, 'slug', t.slug,
                                                   'description', t.description, 'visibility', t.visibility)
                                 ORDER BY pt.sort_order)
                   FROM post_tags pt JOIN tags t ON t.tenant_id = pt.tenant_id AND t.id = pt.tag_id
                  WHERE pt.tenant_id = p.tenant_id AND pt.post_id = p.id AND t.visibility = 'public'), '[]') AS tags,
       coalesce((SELECT json_agg(json_build_object('id', u.id, 'name', u.name, 'slug', m.slug, 'bio', m.bio,
                                                   'profileImage', m.profile_image, 'coverImage', m.cover_image,
                                                   'website', m.website, 'location', m.location)
                                 ORDER BY pa.sort_order)
                   FROM post_authors pa
                   JOIN users u ON u.id = pa.user_id
                   JOIN memberships m ON m.tenant_id = pa.tenant_id AND m.user_id = pa.user_id
                  WHERE pa.tenant_id = p.tenant_id AND pa.post_id = p.id), '[]') AS authors
  FROM posts p
 WHERE ${where}
 ORDER BY p.published_at DESC NULLS LAST, p.id DESC NULLS LAST
 LIMIT $2 OFFSET $3`;

/**
 * The raw Content API list: what `GET /ghost/api/content/posts/?include=tags,authors` reads, in
 * plain SQL, as two statements: the page of published posts (every column the Content API
 * selects, newest publication first, `LIMIT $2 OFFSET $3`), each with its public tags and its
 * authors as JSON; and the count of the list, for its pagination. `$1` is the tenant. The
 * filtered variant is `filter=tag:$4+featured:true` (the count's tag is `$2`).
 */
export const RAW_CONTENT = {
  page: contentPage(contentWhere()),
  count: `SELECT count(*)::int AS total FROM posts p WHERE ${contentWhere()}`,
  filteredPage: contentPage(contentWhere('$4')),
  filteredCount: `SELECT count(*)::int AS total FROM posts p WHERE ${contentWhere('$2')}`,
};

/**
 * The search ceiling: the statement Quire's PostgreSQL search engine runs for readers
 * (src/platform/search/postgres.ts), in plain SQL: published posts and pages matching
 * `websearch_to_tsquery` in the tenant's text search configuration, ranked by the weighted
 * `ts_rank`, with the count of every match (a window count) and an HTML-escaped `ts_headline`
 * snippet for the page's rows. `$1` tenant, `$2` the query, `$3` limit.
 */
export const RAW_SEARCH_SQL = `
WITH s AS MATERIALIZED (
  SELECT c.cfg, websearch_to_tsquery(c.cfg, $2) AS tsq FROM (SELECT quire_tenant_search_config($1::uuid) AS cfg) c),
hits AS (
  SELECT p.id, p.type, p.title, p.slug, p.excerpt, p.published_at,
         ts_rank('{0.1,0.2,0.4,1.0}'::float4[], p.search_vector, s.tsq) AS rank, count(*) OVER () AS total
    FROM posts p CROSS JOIN s
   WHERE p.tenant_id = $1::uuid AND p.status = 'published' AND p.published_at <= now() AND p.search_vector @@ s.tsq
   ORDER BY rank DESC, p.published_at DESC NULLS LAST, p.id DESC NULLS LAST
   LIMIT $3)
SELECT h.*,
       ts_headline(s.cfg,
         replace(replace(replace(replace(replace(left(p.plaintext, 50000),
           '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;'),
         s.tsq, 'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=12, ShortWord=2, FragmentDelimiter=" … "') AS snippet
  FROM hits h JOIN posts p ON p.tenant_id = $1::uuid AND p.id = h.id CROSS JOIN s
 ORDER BY h.rank DESC, h.published_at DESC NULLS LAST, h.id DESC NULLS LAST`;
