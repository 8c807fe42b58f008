import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createTenant, PASSWORD, type TestTenant, type TestUser } from '../helpers/factories.js';

type Entry = {
  id: string;
  at: string;
  action: string;
  actorUserId: string | null;
  ip: string | null;
  userAgent: string | null;
  target: { type: string; id: string } | null;
  details: Record<string, unknown>;
};

describe.each(databaseKinds)('audit log on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let other: TestTenant;
  let admin: TestUser;
  let editor: TestUser;

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
    t = await createTenant(app);
    other = await createTenant(app);
    admin = await createMember(app, t, 'admin');
    editor = await createMember(app, t, 'editor');
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const log = async (tenant: TestTenant, user: TestUser, query = '') => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/audit-log${query}`, headers: tenant.as(user) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { data: Entry[]; meta: { nextCursor: string | null } };
  };
  const login = (email: string, password: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email, password },
      headers: { 'user-agent': 'audit-test/1.0' },
    });

  it('records sign-ins and their failures in the tenants of the person, with IP and user agent', async () => {
    const member = await createMember(app, t, 'author');
    expect((await login(member.email, 'wrong password!')).statusCode).toBe(401);
    expect((await login(member.email, PASSWORD)).statusCode).toBe(200);
    const { data } = await log(t, t.owner, '?limit=100');
    const mine = data.filter((e) => e.actorUserId === member.id && e.action.startsWith('login.'));
    expect(mine.map((e) => e.action).slice(0, 2)).toEqual(['login.succeeded', 'login.failed']);
    expect(mine[0]).toMatchObject({ ip: '127.0.0.1', userAgent: 'audit-test/1.0' });
    expect(mine[1]!.details).toMatchObject({ reason: 'password', failures: 1 });
    // Another tenant sees nothing of it.
    const theirs = await log(other, other.owner, '?limit=100');
    expect(theirs.data.some((e) => e.actorUserId === member.id)).toBe(false);
  });

  it('records a lockout, role changes, removals and content keys, with actor and target', async () => {
    const victim = await createMember(app, t, 'viewer');
    for (let i = 0; i < 5; i++) await login(victim.email, 'wrong password!');
    const role = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tenants/${t.id}/members/${victim.id}`,
      headers: admin.auth,
      payload: { role: 'author' },
    });
    expect(role.statusCode, role.body).toBe(204);
    const key = await app.inject({
      method: 'POST',
      url: '/api/v1/content-keys',
      headers: t.as(admin),
      payload: { name: 'Site' },
    });
    const keyId = key.json().data.id as string;
    await app.inject({ method: 'DELETE', url: `/api/v1/content-keys/${keyId}`, headers: t.as(admin) });
    const removed = await app.inject({
      method: 'DELETE',
      url: `/api/v1/tenants/${t.id}/members/${victim.id}`,
      headers: admin.auth,
    });
    expect(removed.statusCode, removed.body).toBe(204);

    const { data } = await log(t, admin, '?limit=100');
    const find = (action: string) =>
      data.find(
        (e) =>
          e.action === action && (e.target?.id === victim.id || e.target?.id === keyId || e.actorUserId === victim.id),
      );
    expect(find('account.locked')).toMatchObject({ actorUserId: victim.id });
    expect(find('member.role_changed')).toMatchObject({
      actorUserId: admin.id,
      details: { from: 'viewer', to: 'author' },
    });
    expect(find('member.removed')).toMatchObject({ actorUserId: admin.id, target: { type: 'user', id: victim.id } });
    expect(find('content_key.created')).toMatchObject({
      actorUserId: admin.id,
      target: { type: 'content_key', id: keyId },
    });
    expect(find('content_key.revoked')).toMatchObject({
      actorUserId: admin.id,
      target: { type: 'content_key', id: keyId },
    });
    // Nothing secret is logged: no key, no password.
    expect(JSON.stringify(data)).not.toContain(key.json().data.key);
    expect(JSON.stringify(data)).not.toContain(PASSWORD);
  });

  it('filters by action and pages newest first with a cursor', async () => {
    for (let i = 0; i < 3; i++) await login(editor.email, PASSWORD);
    const all = (await log(t, t.owner, '?action=login.succeeded&limit=100')).data;
    expect(all.length).toBeGreaterThanOrEqual(3);
    expect(new Set(all.map((e) => e.action))).toEqual(new Set(['login.succeeded']));
    const first = await log(t, t.owner, '?action=login.succeeded&limit=2');
    expect(first.data).toEqual(all.slice(0, 2));
    const second = await log(t, t.owner, `?action=login.succeeded&limit=2&cursor=${first.meta.nextCursor}`);
    expect(second.data).toEqual(all.slice(2, 4));
    const times = all.map((e) => e.at);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it('is for owners and admins only; bad filters and cursors are 400', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/audit-log', headers: t.as(editor) });
    expectError(res, 403, 'forbidden');
    expectError(
      await app.inject({ method: 'GET', url: '/api/v1/audit-log?action=nope', headers: t.as(t.owner) }),
      400,
      'validation_failed',
    );
    expectError(
      await app.inject({ method: 'GET', url: '/api/v1/audit-log?cursor=bad', headers: t.as(t.owner) }),
      400,
      'invalid_cursor',
    );
    // Another tenant's owner reading this tenant: 404.
    const cross = await app.inject({
      method: 'GET',
      url: '/api/v1/audit-log',
      headers: { ...other.owner.auth, 'x-tenant-id': t.id },
    });
    expectError(cross, 404, 'not_found');
  });

  it('the tenant role can append but neither change nor delete entries', async () => {
    await login(t.owner.email, PASSWORD);
    const before = (await log(t, t.owner, '?limit=100')).data;
    expect(before.length).toBeGreaterThan(0);
    for (const statement of [sql`update audit_log set action = 'x'`, sql`delete from audit_log`]) {
      await expect(
        tdb.db.withTenant({ tenantId: t.id, userId: t.owner.id }, (tx) => tx.execute(statement)),
      ).rejects.toThrow();
    }
    expect((await log(t, t.owner, '?limit=100')).data).toEqual(before);
  });
});
