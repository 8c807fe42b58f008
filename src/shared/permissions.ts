import type { ApiKeyScope, MemberRole } from '../platform/db/schema.js';

/** Who can hold a permission: a member's role, or an admin API key's scope (`key:<scope>`). */
export type Principal = MemberRole | `key:${ApiKeyScope}`;

const STAFF = ['owner', 'admin', 'editor', 'author', 'viewer'] as const;
const WRITERS = ['owner', 'admin', 'editor', 'author'] as const;
const EDITORS = ['owner', 'admin', 'editor'] as const;
const MANAGERS = ['owner', 'admin'] as const;
/** Every key scope reads the content; `admin` holds every scope. */
const READ_KEYS = ['key:content:read', 'key:content:write', 'key:admin'] as const;
const WRITE_KEYS = ['key:content:write', 'key:admin'] as const;
const ADMIN_KEY = 'key:admin';

/**
 * What each role and each API-key scope may do, in one table. One route-level guard checks the
 * action a route declares (`config.access`) against it, and services ask `can(role, action)`
 * again inside the tenant's transaction, where the role is read from the database. Ownership
 * rules ("authors edit their own posts") are a separate `:own` action the service checks against
 * the record. A key acts for the member who created it: it may do what its scopes allow AND
 * that member's current role allows.
 */
export const permissions = {
  'tenant:read': [...STAFF, ...READ_KEYS, 'key:members:read'],
  'tenant:update': [...MANAGERS, ADMIN_KEY],
  'tenant:usage': [...MANAGERS, ADMIN_KEY],
  /** Security policy (require a second factor) and the organization's identity provider. */
  'tenant:security': ['owner'],
  'members:read': [...STAFF, 'key:members:read', ADMIN_KEY],
  'members:manage': [...MANAGERS, ADMIN_KEY],
  /** Remove oneself (leave); removing others is `members:manage`, checked by the service. */
  'members:remove:own': [...STAFF, ADMIN_KEY],
  'authors:read': [...STAFF, ...READ_KEYS, 'key:members:read'],
  /** One's own author profile; others' is `members:manage`, checked by the service. */
  'authors:update:own': [...STAFF, ADMIN_KEY],
  'posts:read': [...STAFF, ...READ_KEYS],
  'posts:create': [...WRITERS, ...WRITE_KEYS],
  'posts:update:own': [...WRITERS, ...WRITE_KEYS],
  'posts:update:any': [...EDITORS, ...WRITE_KEYS],
  'posts:publish:own': [...WRITERS, ...WRITE_KEYS],
  'posts:publish:any': [...EDITORS, ...WRITE_KEYS],
  'posts:delete:own': [...WRITERS, ...WRITE_KEYS],
  'posts:delete:any': [...EDITORS, ...WRITE_KEYS],
  'tags:read': [...STAFF, ...READ_KEYS],
  'tags:manage': [...EDITORS, ...WRITE_KEYS],
  'content-keys:manage': [...MANAGERS, ADMIN_KEY],
  /** Admin API keys are managed by people only: a leaked key cannot mint more keys. */
  'api-keys:manage': MANAGERS,
  'jobs:read': [...MANAGERS, ADMIN_KEY],
  'jobs:retry': [...MANAGERS, ADMIN_KEY],
  'exports:create': [...MANAGERS, ADMIN_KEY],
  'audit:read': [...MANAGERS, ADMIN_KEY],
} as const satisfies Record<string, readonly Principal[]>;

export type Action = keyof typeof permissions;

/**
 * What a route needs: an action on the request's tenant, `user` (any signed-in person, never an
 * API key: their own account, their organizations), `operator` (a platform admin in person:
 * the deployment's own dashboards) or `public` (no credentials).
 */
export type RouteAccess = Action | 'user' | 'operator' | 'public';

export function can(role: MemberRole, action: Action): boolean {
  return (permissions[action] as readonly Principal[]).includes(role);
}

/** Whether a key with these scopes may do `action` (before the creator's role is checked too). */
export function scopesAllow(scopes: readonly ApiKeyScope[], action: Action): boolean {
  const holders = permissions[action] as readonly Principal[];
  return scopes.some((scope) => holders.includes(`key:${scope}`));
}

/** For record-level actions: `:any` always, `:own` when the caller owns the record. */
export function canOnRecord(
  role: MemberRole,
  action: 'posts:update' | 'posts:publish' | 'posts:delete',
  isOwner: boolean,
): boolean {
  return can(role, `${action}:any`) || (isOwner && can(role, `${action}:own`));
}
