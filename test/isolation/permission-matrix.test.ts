import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiKeyScope, apiKeyScopes, type MemberRole, memberRoles } from '../../src/platform/db/schema.js';
import { type Action, permissions } from '../../src/shared/permissions.js';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import {
  createInvitation,
  createMember,
  createTenant,
  PASSWORD,
  renewSession,
  type TestTenant,
  type TestUser,
} from '../helpers/factories.js';
import { waitForJob } from '../helpers/jobs.js';
import type { JsonSchema } from '../helpers/json-schema.js';
import { sessionIdOf } from '../helpers/jwt.js';

/**
 * The whole permission matrix, walked over HTTP: every principal (a member of each role, an admin
 * API key of each scope) against every /api/v1 operation the OpenAPI document lists, each request
 * made in the principal's own tenant on real resources with a valid body, and the outcome compared
 * with the permission table (src/shared/permissions.ts):
 * - a person is allowed iff the action's holders include their role; a key iff they include
 *   `key:<scope>` and its creator's role (here always the owner's);
 * - denied = exactly 403 `forbidden` (people) or 403 `insufficient_scope` (keys), from the guard;
 * - allowed = anything but a 403, a 5xx, or a sign that the guard was never reached (a 400
 *   `validation_failed`, a 401, a 404 for the tenant or the route).
 * `user` routes admit every person and refuse every key (403 `api_key_not_allowed`); `public`
 * routes are not walked.
 */

/**
 * Actions of the table that no route declares, with where they are checked instead. An action
 * listed here must indeed have no route (the list stays honest), and every other action must
 * have one.
 */
const NOT_ON_ROUTES: Partial<Record<Action, string>> = {
  // Record-level: the routes declare the `:own` action and PostsService checks `canOnRecord`
  // against the post's authors (`:any` for posts one does not author).
  'posts:update:any': 'PostsService.update/restore via canOnRecord',
  'posts:publish:any': 'PostsService transitions via canOnRecord',
  'posts:delete:any': 'PostsService.remove via canOnRecord',
};

type Schema = JsonSchema;
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
interface Operation {
  method: Method;
  /** As in the document: `/api/v1/posts/{id}`. */
  path: string;
  /** `PATCH /api/v1/posts/{id}`. */
  key: string;
  access: string;
  pathParams: Array<{ name: string; schema: Schema }>;
  requiredQuery: Array<{ name: string; schema: Schema }>;
  body?: Schema;
  /** The document offers the X-API-Key scheme for the operation. */
  apiKeyAuth: boolean;
}

type Principal =
  | { kind: 'person'; name: string; role: MemberRole; user: TestUser }
  | { kind: 'key'; name: string; scope: ApiKeyScope; key: string };

interface Cell {
  principal: string;
  op: string;
  action: string;
  expected: 'allow' | 'deny';
  status: number;
  code?: string;
  problem?: string;
}

const hex = (n = 4) => randomBytes(n).toString('hex');
const future = () => new Date(Date.now() + 30 * 86_400_000).toISOString();
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Hand-written bodies (by operation, `/pages` as `/posts`); any other operation gets one generated from its schema. */
const BODIES: Record<string, () => unknown> = {
  // Tenant routes.
  'PUT /api/v1/tenants/{id}/settings': () => ({ title: 'Matrix' }),
  // Turning the policy on would lock the staff out (and needs a second factor): off is a no-op.
  'PUT /api/v1/tenants/{id}/security': () => ({ requireMfa: false }),
  'POST /api/v1/tenants/{id}/members': () => ({ email: `matrix-invitee-${hex()}@example.com`, role: 'viewer' }),
  'PATCH /api/v1/tenants/{id}/members/{userId}': () => ({ role: 'viewer' }),
  'POST /api/v1/tenants/{id}/api-keys': () => ({ name: `Matrix ${hex()}`, scopes: ['content:read'] }),
  // A private issuer is refused before any request leaves the server (400 invalid_issuer).
  'PUT /api/v1/tenants/{id}/sso': () => ({
    issuer: 'https://127.0.0.1/matrix',
    clientId: 'matrix',
    clientSecret: 'matrix-secret',
  }),
  'POST /api/v1/tenants/{id}/sso/domains': () => ({ domain: `matrix-${hex()}.example.com` }),
  // Content.
  'POST /api/v1/posts': () => ({ title: `Matrix ${hex()}`, body: 'Matrix body' }),
  'PATCH /api/v1/posts/{id}': () => ({ title: `Matrix edit ${hex()}` }),
  'POST /api/v1/posts/{id}/schedule': () => ({ publishAt: future() }),
  'POST /api/v1/tags': () => ({ name: `Matrix ${hex()}` }),
  'PATCH /api/v1/tags/{id}': () => ({ description: `Matrix ${hex()}` }),
  'PATCH /api/v1/authors/{userId}': () => ({ bio: `Matrix ${hex()}` }),
  'POST /api/v1/content-keys': () => ({ name: 'Matrix' }),
  // A person's own routes: nothing that changes their credentials or turns on a second factor.
  'POST /api/v1/tenants': () => ({ name: 'Matrix', slug: `matrix-${hex()}` }),
  'POST /api/v1/auth/change-password': () => ({
    currentPassword: 'definitely not the password',
    newPassword: `${PASSWORD} but new`,
  }),
  'POST /api/v1/auth/mfa/totp/enroll': () => ({ password: PASSWORD }),
  'POST /api/v1/auth/mfa/totp/confirm': () => ({ code: '000000' }),
  'POST /api/v1/auth/mfa/disable': () => ({ password: PASSWORD, code: '000000' }),
  'POST /api/v1/auth/mfa/recovery-codes': () => ({ password: PASSWORD, code: '000000' }),
};

/** 401 codes of authentication itself (others, such as a wrong code or password, come from handlers). */
const AUTH_FAILURES = ['unauthorized', 'invalid_token', 'invalid_api_key', 'token_expired'];

/** `DELETE …/members/{userId}` with a person's own id: they leave (run last, as it ends their membership). */
const LEAVE = 'DELETE /api/v1/tenants/{id}/members/{userId}';

describe.each(databaseKinds.slice(0, 1))('permission matrix on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let ops: Operation[];
  let resolve: (s: Schema) => Schema;
  const principals: Principal[] = [];
  const people = {} as Record<MemberRole, TestUser>;
  /** Shared resources (path parameters that need no fresh target). */
  const res = {} as {
    post: string;
    page: string;
    postRevision: string;
    pageRevision: string;
    tag: string;
    exportJob: string;
    /** A viewer the role-change route sets to viewer again (a no-op). */
    target: string;
  };
  /** Path parameters nothing bound: filled with a generated value (the guard still runs first). */
  const unbound = new Set<string>();
  let grantOperator: (email: string, on: boolean) => Promise<boolean>;

  beforeAll(async () => {
    tdb = await kind.create();
    const stack = await createTestStack(tdb.db);
    app = stack.app;
    grantOperator = (email, on) => stack.container.services.auth.setPlatformAdmin(email, on);
    // Workers run, so that the export job completes and can be downloaded.
    await stack.container.startWorkers();
    t = await createTenant(app);
    people.owner = t.owner;
    for (const role of memberRoles) {
      if (role !== 'owner') people[role] = await createMember(app, t, role);
    }
    for (const role of memberRoles) principals.push({ kind: 'person', name: role, role, user: people[role] });
    for (const scope of apiKeyScopes) {
      const created = await ok('POST', `/api/v1/tenants/${t.id}/api-keys`, t.owner.auth, {
        name: `Matrix ${scope}`,
        scopes: [scope],
      });
      principals.push({ kind: 'key', name: `key:${scope}`, scope, key: created.key });
    }

    res.post = (await freshContent('posts')).id;
    res.page = (await freshContent('pages')).id;
    res.postRevision = await firstRevision('posts', res.post);
    res.pageRevision = await firstRevision('pages', res.page);
    res.tag = await freshTag();
    res.exportJob = (await ok('POST', '/api/v1/exports', t.as(t.owner))).jobId;
    await waitForJob(app, t.as(t.owner), res.exportJob, ['completed']);
    res.target = (await createMember(app, t, 'viewer')).id;

    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    ({ ops, resolve } = readOperations(doc));
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  /** A setup request that must succeed: its `data`. */
  async function ok(method: Method, url: string, headers: Record<string, string>, payload?: object) {
    const r = await app.inject({ method, url, headers, ...(payload && { payload }) });
    if (r.statusCode >= 300) throw new Error(`setup: ${method} ${url} → ${r.statusCode} ${r.body}`);
    // biome-ignore lint/suspicious/noExplicitAny: setup responses of many shapes
    return r.json().data as any;
  }
  /** A post or page co-authored by every member, so each one's `:own` actions hold on it; a draft unless `then`. */
  async function freshContent(kind: 'posts' | 'pages', then?: 'publish' | 'schedule'): Promise<{ id: string }> {
    const created = await ok('POST', `/api/v1/${kind}`, t.as(t.owner), {
      title: `Matrix ${hex()}`,
      body: 'Matrix body',
      authors: memberRoles.map((r) => people[r].id),
    });
    if (then) {
      const body = then === 'schedule' ? { publishAt: future() } : {};
      await ok('POST', `/api/v1/${kind}/${created.id}/${then}`, t.as(t.owner), body);
    }
    return created;
  }
  const firstRevision = async (kind: string, id: string) =>
    ((await ok('GET', `/api/v1/${kind}/${id}/revisions`, t.as(t.owner))) as Array<{ id: string }>)[0]!.id;
  const freshTag = async () => (await ok('POST', '/api/v1/tags', t.as(t.owner), { name: `Matrix ${hex()}` })).id;

  const headersOf = (p: Principal): Record<string, string> =>
    p.kind === 'person' ? t.as(p.user) : { 'x-api-key': p.key };

  /** A value for one path parameter of `op`, as `p` (fresh targets for destructive routes). */
  async function paramValue(op: Operation, name: string, schema: Schema, p: Principal): Promise<string> {
    const { method, path } = op;
    const del = method === 'DELETE';
    const kind = path.startsWith('/api/v1/pages') ? 'pages' : 'posts';
    if (name === 'id' && path.startsWith('/api/v1/tenants/{id}')) return t.id;
    if (op.key === LEAVE) {
      // People leave; a key removes someone else (its creator, the owner, is the last owner).
      return p.kind === 'person' ? p.user.id : (await createMember(app, t, 'viewer')).id;
    }
    if (path.startsWith('/api/v1/tenants/{id}/members/') && name === 'userId') return res.target;
    if (name === 'invitationId') return (await createInvitation(app, t, 'viewer')).id;
    if (name === 'keyId' && path.includes('/api-keys/')) {
      return (await ok('POST', `/api/v1/tenants/${t.id}/api-keys`, t.owner.auth, { name: 'Victim', scopes: ['admin'] }))
        .id;
    }
    if (name === 'domain' && path.includes('/sso/domains/')) {
      const domain = `matrix-${hex()}.example.com`;
      // Given up: a domain the owner claims now. Verified: an unclaimed one (404, and no DNS query).
      if (del) await ok('POST', `/api/v1/tenants/${t.id}/sso/domains`, t.owner.auth, { domain });
      return domain;
    }
    if (/^\/api\/v1\/(posts|pages)\//.test(path)) {
      if (name === 'revisionId') return kind === 'pages' ? res.pageRevision : res.postRevision;
      // Deleting and moving between states: a fresh post in the state the move starts from.
      const move = /\/\{id\}\/(publish|unpublish|archive|schedule|unschedule)$/.exec(path)?.[1];
      if (name === 'id' && (del || move)) {
        const from = move === 'unpublish' ? 'publish' : move === 'unschedule' ? 'schedule' : undefined;
        return (await freshContent(kind, from)).id;
      }
      if (name === 'id' || name === 'idOrSlug') return kind === 'pages' ? res.page : res.post;
    }
    if (path.startsWith('/api/v1/tags/') && name === 'id') return del ? freshTag() : res.tag;
    if (path.startsWith('/api/v1/authors/') && name === 'userId') {
      // One's own profile (a key's is its creator's); reading, anyone's.
      if (method === 'PATCH') return p.kind === 'person' ? p.user.id : t.owner.id;
      return t.owner.id;
    }
    if (path.startsWith('/api/v1/content-keys/') && name === 'id') {
      return (await ok('POST', '/api/v1/content-keys', t.as(t.owner), { name: 'Victim' })).id;
    }
    if (/^\/api\/v1\/(jobs|exports)\//.test(path) && (name === 'id' || name === 'jobId')) return res.exportJob;
    if (path.startsWith('/api/v1/queues/') && name === 'name') return 'export';
    if (path.startsWith('/api/v1/auth/sessions/') && name === 'sessionId') {
      // One of one's own sessions, fresh (a key has none: its creator's, refused before it matters).
      const who = p.kind === 'person' ? p.user : t.owner;
      const signedIn = await ok('POST', '/api/v1/auth/login', {}, { email: who.email, password: PASSWORD });
      return sessionIdOf(signedIn.accessToken);
    }
    unbound.add(`${op.key} {${name}}`);
    return String(sample(schema, name));
  }

  async function request(op: Operation, p: Principal): Promise<LightMyRequestResponse> {
    const params: Record<string, string> = {};
    for (const { name, schema } of op.pathParams) params[name] = await paramValue(op, name, schema, p);
    let url = op.path.replace(/\{(\w+)\}/g, (_m, n: string) => encodeURIComponent(params[n]!));
    const query = new URLSearchParams(
      op.requiredQuery.map(({ name, schema }): [string, string] => [name, String(sample(schema, name))]),
    );
    if (op.requiredQuery.length) url += `?${query}`;
    const hand = BODIES[op.key.replace('/api/v1/pages', '/api/v1/posts')];
    const body = hand ? hand() : op.body ? sample(op.body) : undefined;
    // Edits name the version they read.
    if (op.method === 'PATCH' && /^\/api\/v1\/(posts|pages)\/\{id\}$/.test(op.path)) {
      const current = await ok('GET', url, t.as(t.owner));
      (body as { version?: number }).version = current.version;
    }
    const res = await app.inject({
      method: op.method,
      url,
      headers: headersOf(p),
      ...(body !== undefined && body !== null && { payload: body as object }),
    });
    // Signing out everywhere ends this person's access token too: they sign in again, in place.
    if (op.key === 'POST /api/v1/auth/logout-all' && res.statusCode < 300 && p.kind === 'person') {
      await renewSession(app, p.user);
    }
    return res;
  }

  /** What went wrong in a cell (undefined: it matches the table). */
  function judge(r: LightMyRequestResponse, expected: 'allow' | 'deny' | 'key', p: Principal) {
    let error: { code?: string; message?: string } = {};
    try {
      error = r.json().error ?? {};
    } catch {}
    const { code, message } = error;
    const got = `${r.statusCode} ${code ?? ''}`.trim();
    if (expected === 'deny' || expected === 'key') {
      const want =
        expected === 'key' ? 'api_key_not_allowed' : p.kind === 'person' ? 'forbidden' : 'insufficient_scope';
      return r.statusCode === 403 && code === want ? undefined : `expected 403 ${want}, got ${got}`;
    }
    if (r.statusCode >= 500) return `server error: ${got}`;
    if (r.statusCode === 403) return `refused (${got}) although allowed`;
    // A 401 of the handler (a wrong password or code) is fine; one of authentication is not.
    if (r.statusCode === 401 && AUTH_FAILURES.includes(code ?? '')) return `not authenticated (${got}): ${message}`;
    if (r.statusCode === 429) return `rate limited (${got})`;
    if (r.statusCode === 400 && code === 'validation_failed') {
      return `the matrix sent an invalid request (${got}), so the guard never ran: ${r.body.slice(0, 300)}`;
    }
    if (r.statusCode === 404 && (code === 'route_not_found' || message === 'Tenant not found')) {
      return `${got}: ${message} (the guard did not see a member of this tenant)`;
    }
    return undefined;
  }

  const describeCells = (cells: Cell[]) =>
    cells.map((c) => `${c.principal.padEnd(18)} ${c.op} [${c.action}, expected ${c.expected}] → ${c.problem}`);

  it('the table, the routes and the document agree on the actions', () => {
    const actions = Object.keys(permissions) as Action[];
    const api = ops.filter((o) => o.path.startsWith('/api/v1/'));
    expect(api.length).toBeGreaterThan(50);
    const bad = api
      .filter((o) => !['public', 'user', 'operator', ...actions].includes(o.access))
      .map((o) => `${o.key}: ${o.access}`);
    expect(bad, 'operations whose x-access is neither public, user, operator nor an action of the table').toEqual([]);

    const used = new Set(api.map((o) => o.access));
    const withoutRoute = actions.filter((a) => !used.has(a) && !(a in NOT_ON_ROUTES));
    expect(withoutRoute, 'actions no route declares: give them a route or list them in NOT_ON_ROUTES').toEqual([]);
    const listedButRouted = Object.keys(NOT_ON_ROUTES).filter((a) => used.has(a));
    expect(listedButRouted, 'NOT_ON_ROUTES lists actions that routes do declare').toEqual([]);

    // The document offers the X-API-Key scheme exactly where some key scope holds the action.
    const schemeMismatch = api
      .filter((o) => o.access in permissions)
      .filter(
        (o) =>
          o.apiKeyAuth !== (permissions[o.access as Action] as readonly string[]).some((h) => h.startsWith('key:')),
      )
      .map((o) => `${o.key} (${o.access}): apiKeyAuth ${o.apiKeyAuth}`);
    expect(schemeMismatch).toEqual([]);
  });

  it('user routes admit every person and refuse every API key', async () => {
    const userOps = ops.filter((o) => o.access === 'user');
    expect(userOps.length).toBeGreaterThan(0);
    const cells: Cell[] = [];
    for (const op of userOps) {
      for (const p of principals) {
        const r = await request(op, p);
        const problem = judge(r, p.kind === 'key' ? 'key' : 'allow', p);
        cells.push({
          principal: p.name,
          op: op.key,
          action: 'user',
          expected: p.kind === 'key' ? 'deny' : 'allow',
          status: r.statusCode,
          problem,
        });
      }
    }
    const failures = cells.filter((c) => c.problem);
    expect(describeCells(failures), `${failures.length} of ${cells.length} cells do not match`).toEqual([]);
    expect(new Set(cells.map((c) => c.op))).toEqual(new Set(userOps.map((o) => o.key)));
    expect(cells).toHaveLength(userOps.length * principals.length);
  }, 120_000);

  it('operator routes refuse every member and key, and admit a platform operator in person', async () => {
    const operatorOps = ops.filter((o) => o.access === 'operator');
    expect(operatorOps.map((o) => o.key)).toContain('GET /api/v1/queues/stats');
    const problems: string[] = [];
    for (const op of operatorOps) {
      for (const p of principals) {
        const problem = judge(await request(op, p), p.kind === 'key' ? 'key' : 'deny', p);
        if (problem) problems.push(`${p.name} ${op.key}: ${problem}`);
      }
      const owner = principals.find((p) => p.kind === 'person' && p.role === 'owner')!;
      expect(await grantOperator(people.owner.email, true)).toBe(true);
      try {
        const problem = judge(await request(op, owner), 'allow', owner);
        if (problem) problems.push(`operator ${op.key}: ${problem}`);
      } finally {
        await grantOperator(people.owner.email, false);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every principal gets exactly what the table grants, on every operation with an action', async () => {
    const actionOps = ops
      .filter((o) => o.path.startsWith('/api/v1/') && o.access in permissions)
      // Leaving ends a person's membership: last, so the order of the rest does not matter.
      .sort((a, b) => Number(a.key === LEAVE) - Number(b.key === LEAVE));
    const cells: Cell[] = [];
    for (const op of actionOps) {
      const action = op.access as Action;
      const holders = permissions[action] as readonly string[];
      for (const p of principals) {
        const allowed =
          p.kind === 'person'
            ? holders.includes(p.role)
            : holders.includes(`key:${p.scope}`) && holders.includes('owner');
        const r = await request(op, p);
        let code: string | undefined;
        try {
          code = r.json().error?.code;
        } catch {}
        cells.push({
          principal: p.name,
          op: op.key,
          action,
          expected: allowed ? 'allow' : 'deny',
          status: r.statusCode,
          code,
          problem: judge(r, allowed ? 'allow' : 'deny', p),
        });
      }
    }
    const failures = cells.filter((c) => c.problem);
    if (unbound.size)
      console.warn(`permission matrix: generated values for unbound path parameters: ${[...unbound].join(', ')}`);
    expect(describeCells(failures), `${failures.length} of ${cells.length} cells do not match the table`).toEqual([]);

    // Nothing skipped: every operation with an action, by every principal.
    const expectedOps = ops.filter((o) => o.path.startsWith('/api/v1/') && o.access in permissions).map((o) => o.key);
    expect(new Set(cells.map((c) => c.op))).toEqual(new Set(expectedOps));
    expect(cells).toHaveLength(expectedOps.length * principals.length);
    // Both outcomes occur for every principal (the matrix is not trivially all-allow or all-deny)...
    for (const p of principals) {
      const mine = cells.filter((c) => c.principal === p.name);
      expect(
        mine.some((c) => c.expected === 'allow'),
        p.name,
      ).toBe(true);
      if (p.name !== 'owner')
        expect(
          mine.some((c) => c.expected === 'deny'),
          p.name,
        ).toBe(true);
    }
    // ...and the allowed cells mostly did their work (not just "not refused").
    const allowed = cells.filter((c) => c.expected === 'allow');
    const succeeded = allowed.filter((c) => c.status < 300);
    expect(succeeded.length / allowed.length).toBeGreaterThan(0.9);
  }, 180_000);

  // -------------------------------------------------------------------------------------------
  // The OpenAPI document, and valid values from its schemas.

  function readOperations(doc: {
    paths: Record<string, Record<string, Record<string, unknown>>>;
    components?: { schemas?: Record<string, Schema> };
  }) {
    const schemas = doc.components?.schemas ?? {};
    const resolve = (s: Schema): Schema => {
      let cur = s;
      for (let i = 0; i < 10 && cur.$ref; i++) cur = schemas[cur.$ref.replace('#/components/schemas/', '')] ?? {};
      return cur;
    };
    const ops: Operation[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) {
        const op = item[m] as
          | {
              'x-access'?: string;
              parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>;
              requestBody?: { content?: Record<string, { schema?: Schema }> };
              security?: Array<Record<string, unknown>>;
            }
          | undefined;
        if (!op) continue;
        const params = op.parameters ?? [];
        const body = op.requestBody?.content?.['application/json']?.schema;
        const method = m.toUpperCase() as Method;
        ops.push({
          method,
          path,
          key: `${method} ${path}`,
          access: op['x-access'] ?? '(none)',
          pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((x) => ({
            name: x[1]!,
            schema: resolve(params.find((q) => q.in === 'path' && q.name === x[1])?.schema ?? { type: 'string' }),
          })),
          requiredQuery: params
            .filter((q) => q.in === 'query' && q.required)
            .map((q) => ({ name: q.name, schema: resolve(q.schema ?? { type: 'string' }) })),
          body: body ? resolve(body) : undefined,
          apiKeyAuth: (op.security ?? []).some((s) => 'apiKeyAuth' in s),
        });
      }
    }
    return { ops, resolve };
  }

  /** A valid value of a schema: required properties only, the first enum value, a string that fits. */
  function sample(raw: Schema, name?: string): unknown {
    const s = resolve(raw);
    const branches = s.anyOf ?? s.oneOf;
    if (branches) {
      const pick = branches.map(resolve).find((b) => b.type !== 'null') ?? branches[0]!;
      return sample(pick, name);
    }
    if (s.allOf?.length) return sample(Object.assign({}, ...s.allOf.map(resolve)), name);
    if (s.const !== undefined) return s.const;
    if (s.enum?.length) return s.enum[0];
    const type = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : (s.type ?? (s.properties ? 'object' : ''));
    switch (type) {
      case 'object':
        return Object.fromEntries((s.required ?? []).map((k) => [k, sample(s.properties?.[k] ?? {}, k)]));
      case 'array':
        return Array.from({ length: Math.max(1, s.minItems ?? 0) }, () => sample(s.items ?? { type: 'string' }, name));
      case 'integer':
      case 'number':
        return Math.max(1, s.minimum ?? 1);
      case 'boolean':
        return false;
      case 'string': {
        if (s.format === 'email' || name === 'email') return `matrix-${hex()}@example.com`;
        if (s.format === 'uuid') return randomUUID();
        if (s.format === 'date-time') return future();
        if (s.format === 'uri' || s.format === 'url') return 'https://example.com/matrix';
        const fits = (v: string) =>
          (!s.pattern || new RegExp(s.pattern, 'u').test(v)) &&
          v.length >= (s.minLength ?? 0) &&
          v.length <= (s.maxLength ?? Number.POSITIVE_INFINITY);
        const candidates = [`matrix-${hex()}`, 'matrix', '000000', 'en', randomBytes(24).toString('base64url')];
        return candidates.find(fits) ?? 'x'.repeat(Math.max(1, s.minLength ?? 1));
      }
      default:
        return undefined;
    }
  }
});
