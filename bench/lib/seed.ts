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
    // Every post has its author in post_authors (the primary author), as the posts service writes it.
    await c.query(
      `WITH inserted AS (
         INSERT INTO posts (tenant_id, author_id, title, slug, body, excerpt, status, published_at, created_at, updated_at)
         SELECT $1, $2, t.title, t.slug, t.body, t.excerpt, t.status, t.published_at, t.created_at, t.created_at
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])
           AS t(title, slug, body, excerpt, status, published_at, created_at)
         RETURNING tenant_id, id, author_id)
       INSERT INTO post_authors (tenant_id, post_id, user_id, sort_order) SELECT tenant_id, id, author_id, 0 FROM inserted`,
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

// --- The large publication: the Content API and search cases read it ---

/** Its public tags: the topic of each post is its primary tag. */
const LARGE_TOPICS = [
  'Shipping',
  'Hiring',
  'Pricing',
  'Onboarding',
  'Security',
  'Roadmap',
  'Culture',
  'Support',
  'Billing',
  'Engineering',
  'Design',
  'Product',
  'Marketing',
  'Operations',
  'Research',
  'Community',
];
/** Common words (most of the prose) and rare ones (about one word in 40): search has terms of every selectivity. */
const COMMON_WORDS = (
  `${words.join(' ')} ` +
  'deploy cluster database index query cache queue worker schema review budget forecast revenue contract ' +
  'support ticket escalation survey retention pipeline deadline estimate prototype feature bug fix test'
).split(' ');
const RARE_WORDS = (
  'kubernetes terraform postgres redis grafana kafka graphql websocket oauth webassembly ' +
  'serverless observability sharding replication failover accessibility localization compliance gdpr sso'
).split(' ');

export interface LargeSeed {
  /** Published posts (type post), newest a few minutes old, one every 157 minutes back. */
  published: number;
  drafts: number;
  pages: number;
  /** Published posts tagged `x` and featured: what `filter=tag:x+featured:true` lists. */
  taggedXFeatured: number;
}

/**
 * Seeds the large publication in bulk, in SQL (`generate_series`): `published` published posts
 * with generated prose (html, plaintext and markdown of about 1.5 KB), one author each, one to
 * four tags (a topic, often a second topic, tag `x` on one post in ten, an internal tag on one
 * in 25), featured one in seven; plus `drafts` drafts and `pages` pages that readers must not see
 * among posts. The search document comes from the triggers (on insert, then once more per post
 * when its tags go in, in one statement). Then VACUUM ANALYZE, as autovacuum would leave it.
 */
export async function insertLargeTenant(
  dbUrl: string,
  tenantId: string,
  authorId: string,
  counts: { published: number; drafts: number; pages: number },
): Promise<LargeSeed> {
  const tables = ['posts', 'post_authors', 'post_tags', 'tags'];
  const total = counts.published + counts.drafts + counts.pages;
  return withClient(dbUrl, async (c) => {
    await c.query('BEGIN');
    // An English publication: its search documents are stemmed (the tenant's language picks the configuration).
    await c.query(`UPDATE tenants SET settings = settings || '{"lang":"en"}'::jsonb WHERE id = $1`, [tenantId]);
    await c.query(
      `INSERT INTO tags (tenant_id, name, slug, description, visibility)
       SELECT $1::uuid, name, lower(name), 'Posts about ' || lower(name) || '.', 'public'::tag_visibility FROM unnest($2::text[]) AS t(name)
       UNION ALL SELECT $1::uuid, 'X', 'x', 'The tag the filtered list asks for.', 'public'::tag_visibility
       UNION ALL SELECT $1::uuid, '#archive', 'hash-archive', 'Internal: never public.', 'internal'::tag_visibility`,
      [tenantId, LARGE_TOPICS],
    );
    // One row per post: n = 1..published are published posts, then drafts, then pages.
    await c.query(
      `CREATE TEMP TABLE bench_large ON COMMIT DROP AS
       WITH seed AS (
         SELECT n, gen_random_uuid() AS id,
                CASE WHEN n <= $1 THEN 'post' WHEN n <= $1 + $2 THEN 'post' ELSE 'page' END AS type,
                CASE WHEN n <= $1 OR n > $1 + $2 THEN 'published' ELSE 'draft' END AS status,
                now() - interval '5 minutes' - (n * interval '157 minutes') AS at
           FROM generate_series(1, $3::int) AS g(n)),
       paragraphs AS (
         SELECT s.n, p.i,
                (SELECT string_agg(CASE WHEN abs(h) % 40 = 0 THEN ($5::text[])[(1 + (abs(h) / 40) % cardinality($5::text[]))::int]
                                        ELSE ($4::text[])[(1 + (abs(h) / 40) % cardinality($4::text[]))::int] END, ' ' ORDER BY k)
                   FROM generate_series(1, 40 + abs(hashint8(s.n::bigint * 10 + p.i)::bigint) % 50) AS k,
                        LATERAL (SELECT hashint8(s.n::bigint * 100000 + p.i * 1000 + k)::bigint AS h) AS hh) AS words
           FROM seed s, generate_series(1, 2 + abs(hashint8(s.n::bigint)::bigint) % 3) AS p(i)),
       prose AS (
         SELECT n,
                string_agg(upper(left(words, 1)) || substr(words, 2) || '.', E'\\n\\n' ORDER BY i) AS text,
                string_agg('<p>' || upper(left(words, 1)) || substr(words, 2) || '.</p>', '' ORDER BY i) AS html,
                sum(array_length(string_to_array(words, ' '), 1)) AS word_count
           FROM paragraphs GROUP BY n)
       SELECT s.*, ($6::text[])[1 + s.n % cardinality($6::text[])] AS topic, p.text, p.html, p.word_count,
              ($4::text[])[(1 + abs(hashint8(s.n::bigint * 7)::bigint) % cardinality($4::text[]))::int] AS w1,
              ($4::text[])[(1 + abs(hashint8(s.n::bigint * 13)::bigint) % cardinality($4::text[]))::int] AS w2
         FROM seed s JOIN prose p USING (n)`,
      [counts.published, counts.drafts, total, COMMON_WORDS, RARE_WORDS, LARGE_TOPICS],
    );
    await c.query(
      `INSERT INTO posts (tenant_id, id, type, author_id, title, slug, body, html, plaintext, reading_time, excerpt,
                          featured, status, published_at, created_at, updated_at)
       SELECT $1::uuid, id, type, $2::uuid, topic || ' notes: ' || w1 || ' and ' || w2 || ' (' || n || ')',
              lower(topic) || '-notes-' || w1 || '-and-' || w2 || '-' || n,
              '## ' || topic || E'\\n\\n' || text, '<h2>' || topic || '</h2>' || html, topic || E'\\n\\n' || text,
              greatest(1, ceil(word_count / 275.0))::int,
              CASE WHEN n % 10 < 3 THEN 'A short note on ' || lower(topic) || ', ' || w1 || ' and ' || w2 || '.' END,
              n % 7 = 0, status, CASE WHEN status = 'published' THEN at END, at - interval '1 hour', at
         FROM bench_large`,
      [tenantId, authorId],
    );
    await c.query(
      `INSERT INTO post_authors (tenant_id, post_id, user_id, sort_order) SELECT $1::uuid, id, $2::uuid, 0 FROM bench_large`,
      [tenantId, authorId],
    );
    // One statement: the statement-level trigger then rebuilds each post's search document once.
    await c.query(
      `INSERT INTO post_tags (tenant_id, post_id, tag_id, sort_order)
       SELECT $1::uuid, b.id, t.id, pick.ord
         FROM bench_large b
         CROSS JOIN LATERAL (VALUES
           (0, lower(b.topic)),
           (1, CASE WHEN b.n % 2 = 0 THEN lower(($2::text[])[1 + (b.n * 5 + 3) % cardinality($2::text[])]) END),
           (2, CASE WHEN b.n % 10 = 0 THEN 'x' END),
           (3, CASE WHEN b.n % 25 = 0 THEN 'hash-archive' END)) AS pick(ord, slug)
         JOIN tags t ON t.tenant_id = $1::uuid AND t.slug = pick.slug`,
      [tenantId, LARGE_TOPICS],
    );
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM bench_large
        WHERE n <= $1 AND n % 7 = 0 AND n % 10 = 0`,
      [counts.published],
    );
    await c.query('COMMIT');
    for (const table of tables) await c.query(`VACUUM (ANALYZE) ${table}`);
    return { ...counts, taggedXFeatured: rows[0]?.n ?? 0 };
  });
}
