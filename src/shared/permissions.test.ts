import { describe, expect, it } from 'vitest';
import { type ApiKeyScope, apiKeyScopes, type MemberRole, memberRoles } from '../platform/db/schema.js';
import { type Action, can, canOnRecord, permissions, scopesAllow } from './permissions.js';

// The README's rules, written out role by role and scope by scope: the table must say exactly this.
const everyone: Action[] = ['tenant:read', 'members:read', 'members:remove:own', 'authors:read', 'authors:update:own'];
const readContent: Action[] = ['posts:read', 'tags:read'];
const writeOwn: Action[] = ['posts:create', 'posts:update:own', 'posts:publish:own', 'posts:delete:own'];
const writeAny: Action[] = ['posts:update:any', 'posts:publish:any', 'posts:delete:any', 'tags:manage'];
const manage: Action[] = [
  'tenant:update',
  'tenant:usage',
  'members:manage',
  'content-keys:manage',
  'api-keys:manage',
  'jobs:read',
  'jobs:retry',
  'exports:create',
  'audit:read',
];
const expected: Record<MemberRole, Action[]> = {
  owner: Object.keys(permissions) as Action[],
  admin: [...everyone, ...readContent, ...writeOwn, ...writeAny, ...manage],
  editor: [...everyone, ...readContent, ...writeOwn, ...writeAny],
  author: [...everyone, ...readContent, ...writeOwn],
  viewer: [...everyone, ...readContent],
};
const expectedScopes: Record<ApiKeyScope, Action[]> = {
  'content:read': ['tenant:read', 'authors:read', ...readContent],
  'content:write': ['tenant:read', 'authors:read', ...readContent, ...writeOwn, ...writeAny],
  'members:read': ['tenant:read', 'members:read', 'authors:read'],
  // Everything an admin may do, except what only a person does: mint keys, set security policy.
  admin: (Object.keys(permissions) as Action[]).filter((a) => a !== 'tenant:security' && a !== 'api-keys:manage'),
};

const actions = Object.keys(permissions) as Action[];
const recordActions = ['posts:update', 'posts:publish', 'posts:delete'] as const;

describe('permission table', () => {
  it('names only the five roles and the four key scopes, each at most once per action', () => {
    const principals = [...memberRoles, ...apiKeyScopes.map((s) => `key:${s}`)];
    for (const action of actions) {
      const holders = permissions[action] as readonly string[];
      expect(new Set(holders).size, action).toBe(holders.length);
      for (const h of holders) expect(principals, action).toContain(h);
    }
  });

  it.each(apiKeyScopes)('an API key with scope %s may do exactly what the README says', (scope) => {
    const allowed = actions.filter((a) => scopesAllow([scope], a));
    expect(allowed.sort()).toEqual([...expectedScopes[scope]].sort());
  });

  it('a key with several scopes may do what any of them allows, and no key manages keys', () => {
    const both = actions.filter((a) => scopesAllow(['content:read', 'members:read'], a));
    expect(both.sort()).toEqual(
      [...new Set([...expectedScopes['content:read'], ...expectedScopes['members:read']])].sort(),
    );
    expect(scopesAllow([...apiKeyScopes], 'api-keys:manage')).toBe(false);
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
