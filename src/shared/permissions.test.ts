import { describe, expect, it } from 'vitest';
import { type MemberRole, memberRoles } from '../platform/db/schema.js';
import { type Action, can, canOnRecord, permissions } from './permissions.js';

// The README's rules, written out role by role: the table must say exactly this.
const expected: Record<MemberRole, Action[]> = {
  owner: Object.keys(permissions) as Action[],
  admin: Object.keys(permissions) as Action[],
  editor: [
    'tenant:read',
    'members:read',
    'posts:read',
    'posts:create',
    'posts:update:own',
    'posts:update:any',
    'posts:publish:own',
    'posts:publish:any',
    'posts:delete:own',
    'posts:delete:any',
    'tags:read',
    'tags:manage',
  ],
  author: [
    'tenant:read',
    'members:read',
    'posts:read',
    'posts:create',
    'posts:update:own',
    'posts:publish:own',
    'posts:delete:own',
    'tags:read',
  ],
  viewer: ['tenant:read', 'members:read', 'posts:read', 'tags:read'],
};

const actions = Object.keys(permissions) as Action[];
const recordActions = ['posts:update', 'posts:publish', 'posts:delete'] as const;

describe('permission table', () => {
  it('covers the five roles and lists each at most once per action', () => {
    for (const action of actions) {
      const roles = permissions[action] as readonly string[];
      expect(new Set(roles).size, action).toBe(roles.length);
      for (const r of roles) expect(memberRoles, action).toContain(r);
    }
  });

  it.each(memberRoles)('%s may do exactly what the README says', (role) => {
    const allowed = actions.filter((a) => can(role, a));
    expect(allowed.sort()).toEqual([...expected[role]].sort());
  });

  it('owners and admins manage members and settings; no one else does', () => {
    for (const action of ['tenant:update', 'tenant:usage', 'members:manage'] as const) {
      expect(memberRoles.filter((r) => can(r, action))).toEqual(['owner', 'admin']);
    }
  });

  it('every role may do at least what the role below it may', () => {
    for (let i = 0; i + 1 < memberRoles.length; i++) {
      const [higher, lower] = [memberRoles[i]!, memberRoles[i + 1]!];
      for (const a of actions) {
        if (can(lower, a)) expect(can(higher, a), `${higher} ⊇ ${lower} on ${a}`).toBe(true);
      }
    }
  });

  it('whoever may act on any post may act on their own', () => {
    for (const base of recordActions) {
      for (const role of memberRoles) {
        if (can(role, `${base}:any`)) expect(can(role, `${base}:own`), `${role} ${base}`).toBe(true);
      }
    }
  });
});

describe('canOnRecord', () => {
  it.each(recordActions)('%s: authors on their own posts only, editors and up on all, viewers never', (action) => {
    const table = memberRoles.map((role) => [role, canOnRecord(role, action, true), canOnRecord(role, action, false)]);
    expect(table).toEqual([
      ['owner', true, true],
      ['admin', true, true],
      ['editor', true, true],
      ['author', true, false],
      ['viewer', false, false],
    ]);
  });
});
