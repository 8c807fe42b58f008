/**
 * The raw ceiling's query: Quire's default list (newest first, one extra row for the next
 * cursor), as the raw-pg baseline runs it. The order is spelled `DESC NULLS LAST` because that
 * is how the posts indexes are built (drizzle-kit's default); with plain `DESC` (NULLS FIRST) no
 * index matches and PostgreSQL reads and sorts every post of the tenant on each request. The
 * columns are NOT NULL, so both spellings return the same rows in the same order.
 */
export const RAW_LIST_SQL =
  'SELECT * FROM posts WHERE tenant_id = $1 ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT 21';
