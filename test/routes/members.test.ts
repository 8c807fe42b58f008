import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberRole } from '../../src/platform/db/schema.js';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import {
  createInvitation,
  createMember,
  createTenant,
  createUser,
  PASSWORD,
  type TestTenant,
  type TestUser,
} from '../helpers/factories.js';

describe.each(databaseKinds)('member and invitation routes on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, user: TestUser, payload?: object) =>
    app.inject({ method, url: `/api/v1${url}`, headers: user.auth, ...(payload && { payload }) });
  const invite = (t: TestTenant, by: TestUser, email: string, role: MemberRole) =>
    call('POST', `/tenants/${t.id}/members`, by, { email, role });
  const setRole = (t: TestTenant, by: TestUser, target: TestUser, role: MemberRole) =>
    call('PATCH', `/tenants/${t.id}/members/${target.id}`, by, { role });
  const remove = (t: TestTenant, by: TestUser, target: TestUser) =>
    call('DELETE', `/tenants/${t.id}/members/${target.id}`, by);
  /** userId → role, as the tenant's owner sees the member list. */
  async function rolesIn(t: TestTenant): Promise<Record<string, string>> {
    const res = await call('GET', `/tenants/${t.id}/members`, t.owner);
    expect(res.statusCode).toBe(200);
    return Object.fromEntries(
      (res.json().data as Array<{ userId: string; role: string }>).map((m) => [m.userId, m.role]),
    );
  }
  async function staffedTenant() {
    const t = await createTenant(app);
    const staff = { owner: t.owner } as Record<MemberRole, TestUser>;
    for (const role of ['admin', 'editor', 'author', 'viewer'] as const) staff[role] = await createMember(app, t, role);
    return { t, staff };
  }

  it('GET /members lists everyone with their role to any member, 404 to others', async () => {
    const { t, staff } = await staffedTenant();
    const res = await call('GET', `/tenants/${t.id}/members`, staff.viewer);
    expect(res.statusCode).toBe(200);
    const members = res.json().data as Array<Record<string, string>>;
    expect(members).toHaveLength(5);
    for (const role of Object.keys(staff) as MemberRole[]) {
      const u = staff[role];
      expect(members).toContainEqual({
        userId: u.id,
        email: u.email,
        name: u.name,
        role,
        joinedAt: expect.any(String),
      });
    }
    expectError(await call('GET', `/tenants/${t.id}/members`, await createUser(app)), 404, 'not_found');
  });

  describe('POST /members', () => {
    it('adds an existing account at once (201 added), whatever the case of the email', async () => {
      const t = await createTenant(app);
      const u = await createUser(app);
      const res = await invite(t, t.owner, u.email.toUpperCase(), 'editor');
      expect(res.statusCode).toBe(201);
      expect(res.json().data).toEqual({ status: 'added', userId: u.id, email: u.email, role: 'editor' });
      expect((await rolesIn(t))[u.id]).toBe('editor');
      const mine = await app.inject({ method: 'GET', url: '/api/v1/tenants', headers: u.auth });
      expect(mine.json().data).toEqual([expect.objectContaining({ id: t.id, role: 'editor' })]);
    });

    it('invites an unknown email (202) and makes it a member with that role when it registers', async () => {
      const t = await createTenant(app);
      const email = `newcomer-${Date.now()}@example.com`;
      const res = await invite(t, t.owner, email, 'author');
      expect(res.statusCode).toBe(202);
      expect(res.json().data).toEqual({ status: 'invited', invitationId: expect.any(String), email, role: 'author' });
      const pending = await call('GET', `/tenants/${t.id}/invitations`, t.owner);
      expect(pending.json().data).toEqual([
        {
          id: res.json().data.invitationId,
          email,
          role: 'author',
          invitedBy: t.owner.id,
          createdAt: expect.any(String),
        },
      ]);

      const newcomer = await createUser(app, { email });
      const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: newcomer.auth });
      expect(me.json().data.memberships).toEqual([{ tenantId: t.id, name: t.name, slug: t.slug, role: 'author' }]);
      expect((await rolesIn(t))[newcomer.id]).toBe('author');
      expect((await call('GET', `/tenants/${t.id}/invitations`, t.owner)).json().data).toEqual([]);
    });

    it('answers an existing member with 409 already_member and leaves the role alone', async () => {
      const t = await createTenant(app);
      const viewer = await createMember(app, t, 'viewer');
      expectError(await invite(t, t.owner, viewer.email, 'admin'), 409, 'already_member');
      expectError(await invite(t, t.owner, t.owner.email, 'viewer'), 409, 'already_member');
      expect((await rolesIn(t))[viewer.id]).toBe('viewer');
    });

    it('is for owners and admins; an admin cannot grant owner', async () => {
      const { t, staff } = await staffedTenant();
      const target = await createUser(app);
      for (const role of ['editor', 'author', 'viewer'] as const) {
        expectError(await invite(t, staff[role], target.email, 'viewer'), 403, 'forbidden');
        expectError(await invite(t, staff[role], `x-${role}@example.com`, 'viewer'), 403, 'forbidden');
      }
      expectError(await invite(t, staff.admin, target.email, 'owner'), 403, 'forbidden');
      expectError(await invite(t, staff.admin, 'would-be-owner@example.com', 'owner'), 403, 'forbidden');
      expect(await rolesIn(t)).not.toHaveProperty(target.id);
      expect((await call('GET', `/tenants/${t.id}/invitations`, t.owner)).json().data).toEqual([]);

      expect((await invite(t, staff.admin, target.email, 'editor')).statusCode).toBe(201);
      const coOwner = await createUser(app);
      expect((await invite(t, staff.owner, coOwner.email, 'owner')).statusCode).toBe(201);
      expect(await rolesIn(t)).toMatchObject({ [target.id]: 'editor', [coOwner.id]: 'owner' });
    });

    it('rejects a malformed email or role with 400', async () => {
      const t = await createTenant(app);
      expectError(await invite(t, t.owner, 'not-an-email', 'viewer'), 400, 'validation_failed');
      expectError(await invite(t, t.owner, 'ok@example.com', 'superuser' as MemberRole), 400, 'validation_failed');
    });
  });

  describe('PATCH /members/:userId', () => {
    it('lets an admin move a member between editor and author', async () => {
      const { t, staff } = await staffedTenant();
      expect((await setRole(t, staff.admin, staff.editor, 'author')).statusCode).toBe(204);
      expect((await rolesIn(t))[staff.editor.id]).toBe('author');
      expect((await setRole(t, staff.admin, staff.editor, 'editor')).statusCode).toBe(204);
      expect((await rolesIn(t))[staff.editor.id]).toBe('editor');
    });

    it('keeps admins away from the owner role, and non-managers away from roles', async () => {
      const { t, staff } = await staffedTenant();
      expectError(await setRole(t, staff.admin, staff.owner, 'viewer'), 403, 'forbidden');
      expectError(await setRole(t, staff.admin, staff.editor, 'owner'), 403, 'forbidden');
      for (const role of ['editor', 'author', 'viewer'] as const) {
        expectError(await setRole(t, staff[role], staff.viewer, 'admin'), 403, 'forbidden');
      }
      expectError(await setRole(t, staff.viewer, staff.viewer, 'owner'), 403, 'forbidden');
      const roles = await rolesIn(t);
      expect([roles[staff.owner.id], roles[staff.editor.id], roles[staff.viewer.id]]).toEqual([
        'owner',
        'editor',
        'viewer',
      ]);
    });

    it('lets an owner promote to owner; the last owner cannot be demoted, one of two can', async () => {
      const { t, staff } = await staffedTenant();
      expectError(await setRole(t, staff.owner, staff.owner, 'admin'), 422, 'last_owner');
      expect((await setRole(t, staff.owner, staff.admin, 'owner')).statusCode).toBe(204);
      // Two owners now: the new one demotes the first.
      expect((await setRole(t, staff.admin, staff.owner, 'editor')).statusCode).toBe(204);
      expect(await rolesIn({ ...t, owner: staff.admin })).toMatchObject({
        [staff.owner.id]: 'editor',
        [staff.admin.id]: 'owner',
      });
      expectError(await setRole(t, staff.admin, staff.admin, 'viewer'), 422, 'last_owner');
    });

    it('is a 404 for someone who is not a member, a 400 for an unknown role', async () => {
      const t = await createTenant(app);
      const outsider = await createUser(app);
      expectError(await setRole(t, t.owner, outsider, 'viewer'), 404, 'not_found');
      const viewer = await createMember(app, t, 'viewer');
      expectError(await setRole(t, t.owner, viewer, 'boss' as MemberRole), 400, 'validation_failed');
    });
  });

  describe('DELETE /members/:userId', () => {
    it('lets owners and admins remove members; a removed member then gets 404 from the tenant', async () => {
      const { t, staff } = await staffedTenant();
      expect((await remove(t, staff.owner, staff.viewer)).statusCode).toBe(204);
      expect((await remove(t, staff.admin, staff.author)).statusCode).toBe(204);
      expect(Object.keys(await rolesIn(t)).sort()).toEqual([staff.owner.id, staff.admin.id, staff.editor.id].sort());
      for (const gone of [staff.viewer, staff.author]) {
        expectError(await call('GET', `/tenants/${t.id}`, gone), 404, 'not_found');
        const posts = await app.inject({ method: 'GET', url: '/api/v1/posts', headers: t.as(gone) });
        expectError(posts, 404, 'not_found');
        // A session bound to the tenant is refused too.
        const login = await app.inject({
          method: 'POST',
          url: '/api/v1/auth/login',
          payload: { email: gone.email, password: PASSWORD, tenantId: t.id },
        });
        expectError(login, 404, 'not_found');
      }
    });

    it('lets any member leave, except the last owner', async () => {
      const { t, staff } = await staffedTenant();
      expect((await remove(t, staff.viewer, staff.viewer)).statusCode).toBe(204);
      expect((await remove(t, staff.editor, staff.editor)).statusCode).toBe(204);
      expectError(await remove(t, staff.owner, staff.owner), 422, 'last_owner');
      expect(Object.keys(await rolesIn(t)).sort()).toEqual([staff.owner.id, staff.admin.id, staff.author.id].sort());
      // With a second owner, the first may go.
      expect((await setRole(t, staff.owner, staff.admin, 'owner')).statusCode).toBe(204);
      expect((await remove(t, staff.owner, staff.owner)).statusCode).toBe(204);
      expectError(await call('GET', `/tenants/${t.id}`, staff.owner), 404);
    });

    it('keeps admins from removing an owner and non-managers from removing anyone', async () => {
      const { t, staff } = await staffedTenant();
      expectError(await remove(t, staff.admin, staff.owner), 403, 'forbidden');
      for (const role of ['editor', 'author', 'viewer'] as const) {
        expectError(await remove(t, staff[role], staff.admin), 403, 'forbidden');
      }
      expect(Object.keys(await rolesIn(t))).toHaveLength(5);
    });
  });

  describe('invitations', () => {
    it('GET lists pending invitations to owners and admins only', async () => {
      const { t, staff } = await staffedTenant();
      const a = await createInvitation(app, t, 'viewer');
      const b = await createInvitation(app, t, 'editor', { by: staff.admin });
      const res = await call('GET', `/tenants/${t.id}/invitations`, staff.admin);
      expect(res.statusCode).toBe(200);
      const rows = res.json().data as Array<{ id: string; role: string; invitedBy: string }>;
      expect(rows.map((r) => [r.id, r.role, r.invitedBy]).sort()).toEqual(
        [
          [a.id, 'viewer', staff.owner.id],
          [b.id, 'editor', staff.admin.id],
        ].sort(),
      );
      for (const role of ['editor', 'author', 'viewer'] as const) {
        expectError(await call('GET', `/tenants/${t.id}/invitations`, staff[role]), 403, 'forbidden');
      }
    });

    it('inviting the same email again updates the pending invitation instead of adding one', async () => {
      const t = await createTenant(app);
      const first = await createInvitation(app, t, 'viewer');
      const again = await createInvitation(app, t, 'editor', { email: first.email });
      expect(again.id).toBe(first.id);
      const rows = (await call('GET', `/tenants/${t.id}/invitations`, t.owner)).json().data;
      expect(rows).toEqual([expect.objectContaining({ id: first.id, role: 'editor' })]);
    });

    it('DELETE withdraws a pending invitation: registering then joins nothing', async () => {
      const { t, staff } = await staffedTenant();
      const inv = await createInvitation(app, t, 'author');
      expectError(await call('DELETE', `/tenants/${t.id}/invitations/${inv.id}`, staff.editor), 403, 'forbidden');
      expect((await call('DELETE', `/tenants/${t.id}/invitations/${inv.id}`, staff.admin)).statusCode).toBe(204);
      expectError(await call('DELETE', `/tenants/${t.id}/invitations/${inv.id}`, staff.owner), 404, 'not_found');
      expect((await call('GET', `/tenants/${t.id}/invitations`, t.owner)).json().data).toEqual([]);
      const late = await createUser(app, { email: inv.email });
      const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: late.auth });
      expect(me.json().data.memberships).toEqual([]);
    });

    it('an accepted invitation can no longer be withdrawn', async () => {
      const t = await createTenant(app);
      const inv = await createInvitation(app, t, 'viewer');
      const joined = await createUser(app, { email: inv.email });
      expectError(await call('DELETE', `/tenants/${t.id}/invitations/${inv.id}`, t.owner), 404, 'not_found');
      expect((await rolesIn(t))[joined.id]).toBe('viewer');
    });
  });
});
