import { eq, type SQL, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Executor, TenantContext } from '../../src/platform/db/index.js';
import { createPgDatabase } from '../../src/platform/db/pg.js';
import { invitations, memberships, posts, tenants, users } from '../../src/platform/db/schema.js';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import {
  createInvitation,
  createMember,
  createPost,
  createTenant,
  createUser,
  type TestTenant,
  type TestUser,
} from '../helpers/factories.js';

const rows = async <T = Record<string, unknown>>(exec: Executor, q: SQL) =>
  ((await exec.execute(q)) as unknown as { rows: T[] }).rows;

/** The SQLSTATE of a driver error, wherever Drizzle put it. */
function pgCode(err: unknown): string | undefined {
  for (let cur = err as { code?: unknown; cause?: unknown } | undefined; cur; cur = cur.cause as typeof cur) {
    if (typeof cur.code === 'string' && /^[0-9A-Z]{5}$/.test(cur.code)) return cur.code;
  }
  return undefined;
}
const expectDenied = async (p: Promise<unknown>) =>
  expect(
    pgCode(
      await p.then(
        () => null,
        (e) => e,
      ),
    ),
  ).toBe('42501');
const ids = (list: Array<{ id: string }>) => list.map((r) => r.id).sort();

describe.each(databaseKinds)('row-level security on $name', (kind) => {
  let tdb: TestDatabase;
  let db: Database;
  let app: FastifyInstance;
  let A: TestTenant;
  let B: TestTenant;
  let both: TestUser; // an editor of A and a viewer of B
  let ctxA: TenantContext;
  beforeAll(async () => {
    tdb = await kind.create();
    db = tdb.db;
    app = await createTestApp(db);
    [A, B] = [await createTenant(app), await createTenant(app)];
    both = await createMember(app, A, 'editor');
    await app.inject({
      method: 'POST',
      url: `/api/v1/tenants/${B.id}/members`,
      headers: B.owner.auth,
      payload: { email: both.email, role: 'viewer' },
    });
    await createMember(app, B, 'author');
    await createUser(app); // in no tenant
    for (const t of [A, B]) {
      for (let i = 0; i < 3; i++) await createPost(app, t, t.owner);
      await createInvitation(app, t, 'viewer');
    }
    ctxA = { tenantId: A.id, userId: both.id };
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  /** Everything B owns, read as the owner role. */
  const snapshotB = async () => ({
    tenant: await db.system.select().from(tenants).where(eq(tenants.id, B.id)),
    posts: await db.system.select().from(posts).where(eq(posts.tenantId, B.id)).orderBy(posts.id),
    memberships: await db.system
      .select()
      .from(memberships)
      .where(eq(memberships.tenantId, B.id))
      .orderBy(memberships.userId),
    invitations: await db.system
      .select()
      .from(invitations)
      .where(eq(invitations.tenantId, B.id))
      .orderBy(invitations.id),
  });

  it('an unscoped query inside withTenant(A) sees only A’s rows', async () => {
    const [allA, allB] = [A.id, B.id].map((id) => db.system.select().from(posts).where(eq(posts.tenantId, id)));
    const [postsA, postsB] = [await allA!, await allB!];
    expect(postsB.length).toBeGreaterThan(0);
    const membersA = await db.system.select().from(memberships).where(eq(memberships.tenantId, A.id));
    const invitesA = await db.system.select().from(invitations).where(eq(invitations.tenantId, A.id));

    const seen = await db.withTenant(ctxA, async (tx, role) => ({
      role,
      posts: await tx.select().from(posts),
      rawPosts: await rows<{ id: string; tenant_id: string }>(tx, sql`select * from posts`),
      memberships: await tx.select().from(memberships),
      rawMemberships: await rows<{ tenant_id: string }>(tx, sql`select * from memberships`),
      invitations: await tx.select().from(invitations),
      tenants: await rows<{ id: string }>(tx, sql`select * from tenants`),
      users: await tx.select({ id: users.id }).from(users),
    }));
    expect(seen.role).toBe('editor');
    expect(ids(seen.posts)).toEqual(ids(postsA));
    expect(ids(seen.rawPosts)).toEqual(ids(postsA));
    expect(new Set(seen.rawPosts.map((p) => p.tenant_id))).toEqual(new Set([A.id]));
    expect(seen.memberships.map((m) => m.userId).sort()).toEqual(membersA.map((m) => m.userId).sort());
    expect(new Set(seen.rawMemberships.map((m) => m.tenant_id))).toEqual(new Set([A.id]));
    expect(ids(seen.invitations)).toEqual(ids(invitesA));
    expect(seen.tenants.map((t) => t.id)).toEqual([A.id]);
    // Users: the caller and A's members; B's owner and author, and the loner, stay hidden.
    expect(ids(seen.users)).toEqual([A.owner.id, both.id].sort());
    expect((await db.system.select({ id: users.id }).from(users)).length).toBeGreaterThan(4);
  });

  it('refresh tokens are out of reach of the tenant role altogether', async () => {
    await expectDenied(db.withTenant(ctxA, (tx) => rows(tx, sql`select * from refresh_tokens`)));
  });

  it('writes aimed at B from inside withTenant(A) are refused or touch nothing', async () => {
    const before = await snapshotB();
    const postB = before.posts[0]!;
    const postA = (await db.system.select().from(posts).where(eq(posts.tenantId, A.id)))[0]!;
    const asA = <T>(fn: (tx: Executor) => Promise<T>) => db.withTenant(ctxA, (tx) => fn(tx));
    const row = { tenantId: B.id, authorId: both.id, title: 'x', slug: 'planted', body: 'x' };

    // Refused with an error (RLS WITH CHECK, or no privilege at all).
    await expectDenied(asA((tx) => tx.insert(posts).values(row)));
    await expectDenied(
      asA((tx) =>
        tx.execute(sql`insert into posts (tenant_id, author_id, title, slug, body)
      values (${B.id}, ${both.id}, 'x', 'raw-planted', 'x')`),
      ),
    );
    await expectDenied(asA((tx) => tx.update(posts).set({ tenantId: B.id }).where(eq(posts.id, postA.id))));
    await expectDenied(asA((tx) => tx.insert(memberships).values({ tenantId: B.id, userId: both.id, role: 'owner' })));
    await expectDenied(asA((tx) => tx.insert(invitations).values({ tenantId: B.id, email: 'x@x.io', role: 'owner' })));
    await expectDenied(asA((tx) => tx.insert(tenants).values({ name: 'x', slug: 'x-planted' })));
    await expectDenied(asA((tx) => tx.update(users).set({ name: 'hacked' })));
    await expectDenied(asA((tx) => tx.delete(tenants)));

    // Filtered out: zero rows affected.
    const touched = await asA(async (tx) => [
      ...(await tx.update(posts).set({ title: 'hacked' }).where(eq(posts.tenantId, B.id)).returning()),
      ...(await tx.update(posts).set({ title: 'hacked' }).where(eq(posts.id, postB.id)).returning()),
      ...(await tx.delete(posts).where(eq(posts.tenantId, B.id)).returning()),
      ...(await rows(tx, sql`update posts set body = 'hacked' where tenant_id = ${B.id} returning id`)),
      ...(await rows(tx, sql`delete from posts returning tenant_id`)).filter((r) => r.tenant_id === B.id),
      ...(await tx.update(memberships).set({ role: 'viewer' }).where(eq(memberships.tenantId, B.id)).returning()),
      ...(await tx.delete(memberships).where(eq(memberships.tenantId, B.id)).returning()),
      ...(await tx.delete(invitations).where(eq(invitations.tenantId, B.id)).returning()),
      ...(await tx.update(tenants).set({ name: 'hacked' }).where(eq(tenants.id, B.id)).returning()),
    ]);
    expect(touched).toEqual([]);
    expect(await snapshotB()).toEqual(before);
  });

  it('runs as quire_app: neither superuser, nor BYPASSRLS, nor owner of any table', async () => {
    const facts = await db.withTenant(ctxA, async (tx) => ({
      me: (
        await rows<{ user: string; rolsuper: boolean; rolbypassrls: boolean }>(
          tx,
          sql`select current_user as "user", rolsuper, rolbypassrls from pg_roles where rolname = current_user`,
        )
      )[0],
      tables: await rows<{ tablename: string; tableowner: string; member: boolean }>(
        tx,
        sql`select tablename, tableowner, pg_has_role(current_user, tableowner, 'MEMBER') as member
            from pg_tables where schemaname = 'public' order by tablename`,
      ),
    }));
    expect(facts.me).toEqual({ user: 'quire_app', rolsuper: false, rolbypassrls: false });
    expect(facts.tables.map((t) => t.tablename)).toEqual(
      expect.arrayContaining(['invitations', 'memberships', 'posts', 'refresh_tokens', 'tenants', 'users']),
    );
    for (const t of facts.tables) {
      expect(t.tableowner, t.tablename).not.toBe('quire_app');
      expect(t.member, `quire_app is a member of ${t.tableowner}, owner of ${t.tablename}`).toBe(false);
    }
  });

  it('with no tenant set, the app role sees nothing and writes nothing', async () => {
    const counts = await db.transaction(async (tx) => {
      await tx.execute(sql`set local role quire_app`);
      return rows<Record<string, number>>(
        tx,
        sql`select (select count(*)::int from posts) as posts, (select count(*)::int from memberships) as memberships,
          (select count(*)::int from invitations) as invitations, (select count(*)::int from tenants) as tenants,
          (select count(*)::int from users) as users, current_user as "user"`,
      );
    });
    expect(counts).toEqual([{ posts: 0, memberships: 0, invitations: 0, tenants: 0, users: 0, user: 'quire_app' }]);
    await expectDenied(
      db.transaction(async (tx) => {
        await tx.execute(sql`set local role quire_app`);
        await tx.insert(posts).values({ tenantId: A.id, authorId: both.id, title: 'x', slug: 'no-ctx', body: 'x' });
      }),
    );
  });

  describe('pooled connection hygiene', () => {
    let pooled: Database; // one connection: every call below reuses it
    beforeAll(() => {
      pooled = kind.name === 'postgres' ? createPgDatabase({ url: tdb.url!, poolMax: 1 }) : db;
    });
    afterAll(async () => {
      if (pooled !== db) await pooled?.close();
    });

    const probe = async (exec: Executor) =>
      (
        await rows<{ pid: number; user: string; tenant: string | null; uid: string | null; role: string }>(
          exec,
          sql`select pg_backend_pid() as pid, current_user as "user", current_setting('app.tenant_id', true) as tenant,
            current_setting('app.user_id', true) as uid, current_setting('role') as role`,
        )
      )[0]!;
    const countIn = (t: TestTenant) =>
      pooled.withTenant({ tenantId: t.id, userId: t.owner.id }, async (tx) =>
        rows<{ n: number; tenants: string[] }>(
          tx,
          sql`select count(*)::int as n, coalesce(array_agg(distinct tenant_id::text), '{}') as tenants from posts`,
        ),
      );

    it('leaves nothing behind after a commit, a thrown error or a failed statement', async () => {
      const clean = await probe(pooled.system);
      expect(clean.user).not.toBe('quire_app');
      expect(clean.tenant || null).toBeNull();
      const [bCount] = await rows<{ n: number }>(
        pooled.system,
        sql`select count(*)::int as n from posts where tenant_id = ${B.id}`,
      );

      const inside = await pooled.withTenant(ctxA, (tx) => probe(tx));
      expect(inside).toMatchObject({ pid: clean.pid, user: 'quire_app', tenant: A.id, uid: both.id });

      const endings: Array<[string, () => Promise<unknown>]> = [
        ['commit', () => pooled.withTenant(ctxA, (tx) => probe(tx))],
        [
          'thrown error',
          () =>
            pooled.withTenant(ctxA, async (tx) => {
              await probe(tx);
              throw new Error('boom');
            }),
        ],
        ['failed statement', () => pooled.withTenant(ctxA, (tx) => rows(tx, sql`select 1 / 0`))],
      ];
      for (const [ending, run] of endings) {
        await run().catch(() => undefined);
        const after = await probe(pooled.system);
        expect(after.pid, ending).toBe(clean.pid);
        expect(after.user, ending).toBe(clean.user);
        expect(after.role, ending).toBe(clean.role);
        expect(after.tenant || null, ending).toBeNull();
        expect(after.uid || null, ending).toBeNull();
        expect(await countIn(B), ending).toEqual([{ n: bCount!.n, tenants: [B.id] }]);
      }
    });
  });
});
