import type { MemberRole } from '../platform/db/schema.js';

/**
 * What each role may do, in one table. Route handlers and services ask `can(role, action)`;
 * nothing else decides authorization. Ownership rules ("authors edit their own posts") are
 * expressed as a separate `:own` action the service checks against the record.
 */
export const permissions = {
  'tenant:read': ['owner', 'admin', 'editor', 'author', 'viewer'],
  'tenant:update': ['owner', 'admin'],
  'tenant:usage': ['owner', 'admin'],
  'members:read': ['owner', 'admin', 'editor', 'author', 'viewer'],
  'members:manage': ['owner', 'admin'],
  'posts:read': ['owner', 'admin', 'editor', 'author', 'viewer'],
  'posts:create': ['owner', 'admin', 'editor', 'author'],
  'posts:update:own': ['owner', 'admin', 'editor', 'author'],
  'posts:update:any': ['owner', 'admin', 'editor'],
  'posts:publish:own': ['owner', 'admin', 'editor', 'author'],
  'posts:publish:any': ['owner', 'admin', 'editor'],
  'posts:delete:own': ['owner', 'admin', 'editor', 'author'],
  'posts:delete:any': ['owner', 'admin', 'editor'],
  'tags:read': ['owner', 'admin', 'editor', 'author', 'viewer'],
  'tags:manage': ['owner', 'admin', 'editor'],
  'content-keys:manage': ['owner', 'admin'],
  'jobs:read': ['owner', 'admin'],
  'jobs:retry': ['owner', 'admin'],
  'exports:create': ['owner', 'admin'],
  'audit:read': ['owner', 'admin'],
} as const satisfies Record<string, readonly MemberRole[]>;

export type Action = keyof typeof permissions;

export function can(role: MemberRole, action: Action): boolean {
  return (permissions[action] as readonly MemberRole[]).includes(role);
}

/** For record-level actions: `:any` always, `:own` when the caller owns the record. */
export function canOnRecord(
  role: MemberRole,
  action: 'posts:update' | 'posts:publish' | 'posts:delete',
  isOwner: boolean,
): boolean {
  return can(role, `${action}:any`) || (isOwner && can(role, `${action}:own`));
}
