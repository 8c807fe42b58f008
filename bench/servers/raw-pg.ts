/**
 * Baseline 2, the raw ceiling: bare Fastify + a node-postgres pool running Quire's default list
 * query as the connecting (owner) role. No auth, no ORM, no transaction, no row-level security.
 * `PORT` on 127.0.0.1, `DATABASE_URL`, `DATABASE_POOL_MAX` (default 10, as Quire).
 */
import Fastify from 'fastify';
import pg from 'pg';
import { RAW_LIST_SQL } from '../lib/queries.js';

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

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void Promise.all([app.close(), pool.end()]).then(() => process.exit(0)));
}
