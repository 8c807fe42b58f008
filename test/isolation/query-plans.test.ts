import { type SQL, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPosts } from '../../src/modules/posts/repository.js';
import type { Database, Executor } from '../../src/platform/db/index.js';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createMember, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

const rows = async <T = Record<string, unknown>>(exec: Executor, q: SQL) =>
  ((await exec.execute(q)) as unknown as { rows: T[] }).rows;

/**
 * The list queries as the app runs them (inside withTenant, as quire_app under row-level security),
 * on 2,000 posts per tenant with statistics: each must read its rows in order straight off the
 * index meant for it, never sort the tenant's posts. And every foreign key must be indexed.
 */
describe.each(databaseKinds)('query plans and foreign-key indexes on $name', (kind) => {
  let tdb: TestDatabase;
  let db: Database;
  let app: FastifyInstance;
  let C: TestTenant;
  let editor: TestUser;
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });
  beforeAll(async () => {
    tdb = await kind.create();
    db = tdb.db;
    app = await createTestApp(db);
    C = await createTenant(app);
    editor = await createMember(app, C, 'editor');
    const other = await createTenant(app);
    for (const [t, author] of [
      [C, editor],
      [other, other.owner],
    ] as const) {
      await db.system.execute(sql`insert into posts (tenant_id, author_id, title, slug, body, status, published_at, created_at)
        select ${t.id}::uuid, case when g % 4 = 0 then ${author.id}::uuid else ${t.owner.id}::uuid end, 'T' || g,
          'bulk-' || g, 'b', (array['draft', 'published', 'archived'])[1 + g % 3],
          case when g % 3 = 1 then now() - g * interval '1 minute' end, now() - g * interval '1 second'
        from generate_series(1, 2000) g`);
    }
    await db.system.execute(sql`analyze posts`);
  });

  type Plan = { 'Node Type': string; 'Index Name'?: string; 'Parent Relationship'?: string; Plans?: Plan[] };
  // The list's own plan: a row's tags come from a correlated subquery (a SubPlan per row, with
  // its own small ordered aggregate), which is not how the list is found or ordered.
  const flatten = (p: Plan): Plan[] => [
    p,
    ...(p.Plans ?? []).filter((c) => c['Parent Relationship'] !== 'SubPlan').flatMap(flatten),
  ];
  async function planOf(filter: Parameters<typeof listPosts>[2]) {
    return db.withTenant({ tenantId: C.id, userId: C.owner.id }, async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const [out] = await rows<{ 'QUERY PLAN': unknown }>(
        tx,
        sql`explain (format json) ${listPosts(tx, C.id, filter)}`,
      );
      const doc = out!['QUERY PLAN'];
      const root = (typeof doc === 'string' ? JSON.parse(doc) : doc) as Array<{ Plan: Plan }>;
      return flatten(root[0]!.Plan);
    });
  }
  const expectOrderedBy = (nodes: Plan[], index: string) => {
    expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
    expect(nodes.map((n) => n['Node Type'])).not.toContain('Incremental Sort');
    expect(nodes.filter((n) => /^Index (Only )?Scan$/.test(n['Node Type'])).map((n) => n['Index Name'])).toEqual([
      index,
    ]);
  };
  const at = { value: new Date(), id: '00000000-0000-4000-8000-000000000000' };

  it.each([
    ['newest first', 'posts_tenant_type_created_idx', { sort: 'created_at' }],
    ['newest first, next page', 'posts_tenant_type_created_idx', { sort: 'created_at', after: at }],
    ['by author', 'posts_tenant_author_created_idx', { sort: 'created_at', authorId: 'EDITOR' }],
    ['by publication date', 'posts_tenant_type_published_idx', { sort: 'published_at' }],
  ] as const)('lists %s straight off %s, with no sort step', async (_shape, index, f) => {
    const filter = { type: 'post' as const, limit: 20, ...f, ...('authorId' in f && { authorId: editor.id }) };
    expectOrderedBy(await planOf(filter), index);
  });

  it('lists by status in index order, with no sort step', async () => {
    const nodes = await planOf({ type: 'post', limit: 20, sort: 'created_at', status: 'draft' });
    expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
  });

  // Status and type are text (equality LEAKPROOF), so under row-level security they are index
  // conditions; as enums they were not, and these lists sorted the tenant's rows.
  it.each([
    ['created_at', 'posts_tenant_type_status_created_idx'],
    ['published_at', 'posts_tenant_type_status_published_idx'],
  ] as const)('lists by status sorted by %s off %s', async (sort, index) => {
    expectOrderedBy(await planOf({ type: 'post', limit: 20, sort, status: 'published' }), index);
  });

  it('every foreign key has an index leading with its columns', async () => {
    const fks = await rows<{ name: string; tbl: string; cols: string }>(
      db.system,
      sql`select conname as name, conrelid::regclass::text as tbl, array_to_string(conkey, ' ') as cols
          from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace`,
    );
    const indexes = await rows<{ tbl: string; name: string; cols: string }>(
      db.system,
      sql`select indrelid::regclass::text as tbl, indexrelid::regclass::text as name, indkey::text as cols
          from pg_index where indpred is null
           and indrelid in (select oid from pg_class where relnamespace = 'public'::regnamespace)`,
    );
    expect(fks.length).toBeGreaterThanOrEqual(7);
    const uncovered = fks.filter((fk) => {
      const want = fk.cols.split(' ').sort().join(' ');
      return !indexes.some(
        (i) => i.tbl === fk.tbl && i.cols.split(' ').slice(0, want.split(' ').length).sort().join(' ') === want,
      );
    });
    expect(uncovered.map((fk) => `${fk.tbl}.${fk.name}`)).toEqual([]);
  });
});
