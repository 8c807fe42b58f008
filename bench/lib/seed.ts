import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A throw-away database on the benchmark server. */
export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'quire-bench' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates `quire_bench_<random>` through the admin URL; `drop()` removes it even with clients still connected. */
export async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `quire_bench_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
}

// --- Content: deterministic (seeded) so every run lists the same kind of rows ---

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const topics = ['Shipping', 'Hiring', 'Pricing', 'Onboarding', 'Security', 'Roadmap', 'Culture', 'Support', 'Billing'];
const words = (
  'the team release customer feedback quarter metric launch design review plan migration latency invoice ' +
  'dashboard export import policy audit onboarding pricing tier churn growth experiment rollout incident ' +
  'postmortem hiring interview culture remote office sprint backlog roadmap api webhook integration partner'
).split(' ');

export interface PostContent {
  title: string;
  body: string;
  excerpt: string | null;
}

/** `n`-th post of a seeded stream: a title, an excerpt and a body of about 1–2 KB of prose. */
export function postContent(n: number): PostContent {
  const rnd = prng(n + 1);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const sentence = () => {
    const len = 8 + Math.floor(rnd() * 12);
    const s = Array.from({ length: len }, () => pick(words)).join(' ');
    return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
  };
  const target = 1000 + Math.floor(rnd() * 1000);
  const paragraphs: string[] = [];
  let size = 0;
  while (size < target) {
    const p = Array.from({ length: 3 + Math.floor(rnd() * 3) }, sentence).join(' ');
    paragraphs.push(p);
    size += p.length + 2;
  }
  const topic = pick(topics);
  return {
    title: `${topic} notes: ${pick(words)} and ${pick(words)} (${n})`,
    body: `# ${topic}\n\n${paragraphs.join('\n\n')}`,
    excerpt: rnd() < 0.8 ? sentence() : null,
  };
}

const slugOf = (title: string) =>
  title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/**
 * Inserts `count` posts for one tenant straight into the database (seeding is not what is
 * measured): newest a few hours old, then spread over months; two in three published.
 */
export async function insertPosts(dbUrl: string, tenantId: string, authorId: string, from: number, count: number) {
  const cols = { title: [] as string[], slug: [] as string[], body: [] as string[], excerpt: [] as (string | null)[] };
  const status: string[] = [];
  const created: string[] = [];
  const published: (string | null)[] = [];
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const n = from + i;
    const c = postContent(n);
    cols.title.push(c.title);
    cols.slug.push(slugOf(c.title));
    cols.body.push(c.body);
    cols.excerpt.push(c.excerpt);
    const at = now - (i + 1) * 3 * 3_600_000 - ((n * 7919) % 3_600_000);
    created.push(new Date(at).toISOString());
    const isPublished = n % 3 !== 2;
    status.push(isPublished ? 'published' : 'draft');
    published.push(isPublished ? new Date(at + 600_000).toISOString() : null);
  }
  await withClient(dbUrl, async (c) => {
    await c.query(
      `INSERT INTO posts (tenant_id, author_id, title, slug, body, excerpt, status, published_at, created_at, updated_at)
       SELECT $1, $2, t.title, t.slug, t.body, t.excerpt, t.status, t.published_at, t.created_at, t.created_at
       FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])
         AS t(title, slug, body, excerpt, status, published_at, created_at)`,
      [tenantId, authorId, cols.title, cols.slug, cols.body, cols.excerpt, status, published, created],
    );
    await c.query('VACUUM (ANALYZE) posts');
  });
}

/** Removes the posts a write case created (slug prefix) so every round lists and reads the same table. */
export async function deletePostsBySlugPrefix(dbUrl: string, tenantId: string, prefix: string): Promise<number> {
  return withClient(dbUrl, async (c) => {
    const { rowCount } = await c.query('DELETE FROM posts WHERE tenant_id = $1 AND slug LIKE $2', [
      tenantId,
      `${prefix}%`,
    ]);
    await c.query('VACUUM (ANALYZE) posts');
    return rowCount ?? 0;
  });
}

export const countPosts = (dbUrl: string, tenantId: string) =>
  withClient(dbUrl, async (c) => {
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM posts WHERE tenant_id = $1', [
      tenantId,
    ]);
    return rows[0]?.n ?? 0;
  });

/** The plan PostgreSQL picks for `sql`, one line per node (e.g. `Limit`, `Index Scan using …`). */
export const explain = (dbUrl: string, sql: string, params: unknown[]) =>
  withClient(dbUrl, async (c) => {
    const { rows } = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${sql}`, params);
    return rows.map((r) => r['QUERY PLAN'].trim().replace(/^->\s*/, ''));
  });
