/**
 * Baseline 2, the raw ceiling: bare Fastify + a node-postgres pool running Quire's queries as
 * the connecting (owner) role. No auth, no ORM, no transaction, no row-level security.
 * - `GET /posts?tenant=`: the staff list's query (`RAW_LIST_SQL`).
 * - `GET /content?tenant=&limit=&page=[&tag=]`: the Content API list with tags and authors, and
 *   its count (`RAW_CONTENT`): two statements, one after the other.
 * - `GET /search?tenant=&q=`: the search ceiling (`RAW_SEARCH_SQL`), when search is benched.
 * `PORT` on 127.0.0.1, `DATABASE_URL`, `DATABASE_POOL_MAX` (default 10, as Quire).
 */
import Fastify from 'fastify';
import pg from 'pg';
import { RAW_CONTENT, RAW_LIST_SQL, RAW_SEARCH_SQL } from '../lib/queries.js';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DATABASE_POOL_MAX ?? 10),
  application_name: 'quire-bench-raw',
});
pool.on('error', () => {});

const app = Fastify({ logger: false });
app.get<{ Querystring: { tenant?: string } }>('/posts', async (req) => {
  const { rows } = await pool.query(RAW_LIST_SQL, [req.query.tenant]);
  return { data: rows.slice(0, 20) };
});

app.get<{ Querystring: { tenant?: string; limit?: string; page?: string; tag?: string } }>('/content', async (req) => {
  const { tenant, tag } = req.query;
  const limit = Number(req.query.limit ?? 15);
  const page = Number(req.query.page ?? 1);
  const offset = (page - 1) * limit;
  const { rows } = tag
    ? await pool.query(RAW_CONTENT.filteredPage, [tenant, limit, offset, tag])
    : await pool.query(RAW_CONTENT.page, [tenant, limit, offset]);
  const count = tag
    ? await pool.query<{ total: number }>(RAW_CONTENT.filteredCount, [tenant, tag])
    : await pool.query<{ total: number }>(RAW_CONTENT.count, [tenant]);
  return { posts: rows, meta: { pagination: { page, limit, total: count.rows[0]?.total ?? 0 } } };
});

app.get<{ Querystring: { tenant?: string; q?: string; limit?: string } }>('/search', async (req) => {
  const { rows } = await pool.query(RAW_SEARCH_SQL, [req.query.tenant, req.query.q, Number(req.query.limit ?? 10)]);
  return { data: rows };
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void Promise.all([app.close(), pool.end()]).then(() => process.exit(0)));
}
