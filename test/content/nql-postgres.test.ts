import { type SQL, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileNql, type NqlFields } from '../../src/modules/content-api/nql.js';
import type { Database } from '../../src/platform/db/index.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';

/**
 * NQL conditions run against the database: what rows they match, not just the SQL text. The
 * tables live in a schema of their own (nql_test.nql_*) in the suite's fresh database, apart
 * from the app's tables.
 */
const ids = {
  alpha: '00000000-0000-4000-8000-00000000000a',
  beta: '00000000-0000-4000-8000-00000000000b',
  gamma: '00000000-0000-4000-8000-00000000000c',
  delta: '00000000-0000-4000-8000-00000000000d',
  sale: '00000000-0000-4000-8000-00000000000e',
};

const fields: NqlFields = {
  id: { type: 'uuid', column: sql`p.id` },
  slug: { type: 'string', column: sql`p.slug` },
  title: { type: 'string', column: sql`p.title` },
  featured: { type: 'boolean', column: sql`p.featured` },
  published_at: { type: 'date', column: sql`p.published_at` },
  reading_time: { type: 'number', column: sql`p.reading_time` },
  feature_image: { type: 'string', column: sql`p.feature_image` },
  tag: {
    type: 'string',
    some: (pred: (col: SQL) => SQL) =>
      sql`exists (select 1 from nql_test.nql_post_tags pt join nql_test.nql_tags t on t.id = pt.tag_id
        where pt.post_id = p.id and ${pred(sql`t.slug`)})`,
  },
};

describe.each(databaseKinds)('NQL filters on $name', (kind) => {
  let tdb: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    tdb = await kind.create();
    db = tdb.db;
    await db.query(`
      create schema nql_test;
      create table nql_test.nql_posts (
        id uuid primary key, slug text not null, title text not null, featured boolean not null,
        published_at timestamptz, reading_time integer not null, feature_image text);
      create table nql_test.nql_tags (id integer primary key, slug text not null unique);
      create table nql_test.nql_post_tags (
        post_id uuid not null references nql_test.nql_posts, tag_id integer not null references nql_test.nql_tags,
        primary key (post_id, tag_id));
      insert into nql_test.nql_tags values (1, 'news'), (2, 'tips'), (3, 'how-to');`);
    await db.query(
      `insert into nql_test.nql_posts values
        ($1, 'alpha', 'Alpha', true, '2020-01-01T00:00:00Z', 3, 'a.png'),
        ($2, 'beta', 'Beta', false, '2021-06-01T00:00:00Z', 7, null),
        ($3, 'gamma', 'Gamma', false, null, 12, 'c.png'),
        ($4, 'delta', 'Delta', true, now() - interval '5 days', 1, null),
        ($5, 'sale-100%_off', 'It''s 100% off', false, now() - interval '60 days', 2, null)`,
      [ids.alpha, ids.beta, ids.gamma, ids.delta, ids.sale],
    );
    await db.query(`insert into nql_test.nql_post_tags values ($1, 1), ($1, 2), ($2, 1), ($3, 2), ($3, 3)`, [
      ids.alpha,
      ids.beta,
      ids.delta,
    ]);
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  async function matching(filter: string): Promise<string[]> {
    const res = (await db.system.execute(
      sql`select p.slug from nql_test.nql_posts p where ${compileNql(filter, fields)} order by p.slug`,
    )) as unknown as { rows: { slug: string }[] };
    return res.rows.map((r) => r.slug);
  }

  it.each([
    ['tag:news', ['alpha', 'beta']],
    // Has no tag news: includes the posts with no tags at all.
    ['tag:-news', ['delta', 'gamma', 'sale-100%_off']],
    ['tag:null', ['gamma', 'sale-100%_off']],
    ['tag:-null', ['alpha', 'beta', 'delta']],
    ['tag:[news,how-to]', ['alpha', 'beta', 'delta']],
    ['tag:-[news,how-to]', ['gamma', 'sale-100%_off']],
    ['tag:[news+tips]', ['alpha']],
    ['tag:[how-to,null]', ['delta', 'gamma', 'sale-100%_off']],
    ['featured:true+tag:tips', ['alpha', 'delta']],
    ['featured:true+(tag:news,reading_time:>10)', ['alpha']],
    ['(featured:true+tag:news),reading_time:>10', ['alpha', 'gamma']],
    ['published_at:>now-30d', ['delta']],
    ["published_at:<'2021-01-01'", ['alpha']],
    ["published_at:>='2021-06-01 00:00:00'", ['beta', 'delta', 'sale-100%_off']],
    ['published_at:null', ['gamma']],
    ["reading_time:>='2.5'", ['alpha', 'beta', 'gamma']],
    ['reading_time:<=2', ['delta', 'sale-100%_off']],
    ['feature_image:null', ['beta', 'delta', 'sale-100%_off']],
    ["feature_image:-'a.png'", ['beta', 'delta', 'gamma', 'sale-100%_off']],
    ["feature_image:-['a.png',null]", ['gamma']],
    ["slug:~^'AL'", ['alpha']],
    ["slug:~$'TA'", ['beta', 'delta']],
    ["slug:-~'ta'", ['alpha', 'gamma', 'sale-100%_off']],
    // % and _ are text: unescaped, '%a_p%' would match alpha and '%0%_%' every slug with a 0.
    ["slug:~'a_p'", []],
    ["slug:~'0%_'", ['sale-100%_off']],
    ["title:~'it\\'s 100%'", ['sale-100%_off']],
    [`id:${ids.gamma}`, ['gamma']],
    ['id:-nope', ['alpha', 'beta', 'delta', 'gamma', 'sale-100%_off']],
    ['id:nope', []],
    [`id:[nope,${ids.beta}]`, ['beta']],
    [`id:-[nope,${ids.beta}]`, ['alpha', 'delta', 'gamma', 'sale-100%_off']],
    ["title:'\\'; drop table nql_test.nql_posts; --'", []],
    ["slug:'alpha\\' or \\'1\\'=\\'1'", []],
    ["tag:'news\\') or true; --'", []],
  ])('%s', async (filter, expected) => {
    expect(await matching(filter)).toEqual(expected);
  });

  it('leaves the tables intact after the injection attempts', async () => {
    const { rows } = await db.query(
      `select (select count(*) from nql_test.nql_posts)::int as posts, (select count(*) from nql_test.nql_post_tags)::int as links`,
    );
    expect(rows).toEqual([{ posts: 5, links: 5 }]);
  });
});
