import { createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberRole } from '../../src/platform/db/schema.js';
import { createTestApp, createTestStack, TEST_JWT_SECRET } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createUser, PASSWORD, renewSession, type TestUser } from '../helpers/factories.js';
import { decode, forgeries, hmac } from './jwt.js';
import { INJECTION, INJECTION_SAMPLE, NQL, TRAVERSAL } from './payloads.js';
import { type Generator, generator, type Operation, readOperations, stringFields, urlOf } from './spec.js';
import { type Attempt, describeFindings, is2xx, type MarkerKind, type Runner, runner, tally } from './tally.js';
import {
  API_KEY_SCOPES,
  type ApiKeyScope,
  type ApiKeysStatus,
  BASE_HOST,
  bindings,
  ROLES,
  snapshotter,
  type TenantWorld,
  WorldBuilder,
} from './world.js';

/**
 * The automated attack suite. Driven by the app's own OpenAPI document: for every operation,
 *  - every member of tenant A (each role) and each of A's keys tries it against tenant B's
 *    resources (B named by X-Tenant-ID, by subdomain, by path, by id from inside A);
 *  - unauthenticated callers try it; forged JWTs (expired, tampered, alg none, wrong kid, wrong
 *    key, wrong iss/aud…) try every authenticated one;
 *  - malformed, oversized and wrong-content-type bodies; SQL, NQL and script payloads in every
 *    string field, query parameter and path parameter; mass assignment of tenantId, role,
 *    authorId, status…; path traversal in slugs;
 * and every response is searched for stack traces, SQL errors, other tenants' data (marker
 * strings planted in B) and scripts in HTML. Prints `security: N attempts, M succeeded` once for
 * the whole suite (every database kind); the last test of each kind fails listing every attempt
 * that succeeded. `SECURITY_FINDINGS_FILE=/path.json` also writes them (and the known bugs' hits)
 * there, for triage.
 */

afterAll(() => {
  console.log(`security: ${tally.attempts} attempts, ${tally.succeeded} succeeded`);
  const classes = Object.entries(tally.byClass)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(`security: by class: ${classes}`);
});

/** The principals of tenant A: how each presents its credential. */
interface Credential {
  via: string;
  headers: Record<string, string>;
  /** Query parameters (a content key is `?key=`). */
  query?: Record<string, string>;
}
interface Principal {
  label: string;
  kind: 'user' | 'content-key' | 'api-key';
  creds: Credential[];
  maySee: MarkerKind[];
  user?: TestUser;
}

const keyCreds = (key: string): Credential[] => [
  { via: '?key=', headers: {}, query: { key } },
  { via: 'Bearer', headers: { authorization: `Bearer ${key}` } },
  { via: 'X-API-Key', headers: { 'x-api-key': key } },
];

const hex = (n = 4) => randomBytes(n).toString('hex');

describe.each(databaseKinds)('attack suite on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let dataDir: string;
  let builder: WorldBuilder;
  let A: TenantWorld;
  let B: TenantWorld;
  let ops: Operation[];
  let gen: Generator;
  let snap: Awaited<ReturnType<typeof snapshotter>>;
  let initialB: Record<string, string>;
  let apiKeys: ApiKeysStatus;
  let revokedContentKey: string;
  let revokedApiKey: string | undefined;
  let expiredApiKey: { key: string; expiresAt: number } | undefined;
  let probe: TestUser;
  let r: Runner;
  const unresolved = new Set<string>();
  const attacked = new Map<string, Set<string>>();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'quire-security-'));
    tdb = await kind.create();
    let container: Awaited<ReturnType<typeof createTestStack>>['container'];
    ({ app, container } = await createTestStack(tdb.db, {
      BASE_HOST,
      DATA_DIR: dataDir,
      QUEUE_POLL_INTERVAL_MS: '50',
    }));
    // Exports only: each tenant has a finished export file an attacker could try to download.
    await container.startWorkers(['export']);
    builder = new WorldBuilder(app);
    A = await builder.tenant('A', { exports: true });
    B = await builder.tenant('B', { exports: true });
    apiKeys = await builder.apiKeys(A, API_KEY_SCOPES);
    if (apiKeys.available) await builder.apiKeys(B, ['admin']);
    const revoked = await app.inject({
      method: 'POST',
      url: '/api/v1/content-keys',
      headers: A.tenant.as(A.tenant.owner),
      payload: { name: 'revoked' },
    });
    revokedContentKey = revoked.json().data.key;
    const del = await app.inject({
      method: 'DELETE',
      url: `/api/v1/content-keys/${revoked.json().data.id}`,
      headers: A.tenant.as(A.tenant.owner),
    });
    expect(del.statusCode).toBe(204);
    if (apiKeys.available) {
      const k = await app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${A.tenant.id}/api-keys`,
        headers: A.tenant.owner.auth,
        payload: { name: 'revoked', scopes: ['admin'] },
      });
      const rk = await app.inject({
        method: 'DELETE',
        url: `/api/v1/tenants/${A.tenant.id}/api-keys/${k.json().data.id}`,
        headers: A.tenant.owner.auth,
      });
      expect(rk.statusCode, rk.body).toBe(204);
      revokedApiKey = k.json().data.key;
      // Expires a second from now: long past by the time the revoked-keys test runs.
      const expiresAt = Date.now() + 1000;
      const e = await app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${A.tenant.id}/api-keys`,
        headers: A.tenant.owner.auth,
        payload: { name: 'expiring', scopes: ['admin'], expiresAt: new Date(expiresAt).toISOString() },
      });
      expect(e.statusCode, e.body).toBe(201);
      expiredApiKey = { key: e.json().data.key, expiresAt };
    }
    // Global routes (auth, creating tenants) are attacked as a user of no tenant.
    probe = await createUser(app, { name: 'Probe' });

    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const read = readOperations(doc);
    ops = read.ops;
    gen = generator(read.resolve);
    snap = await snapshotter(tdb.db);
    initialB = await snap.detail(B.tenant.id);
    r = runner({
      app: () => app,
      db: kind.name,
      markers: () => builder.markers,
      snapshot: (t) => snap.digest(t === 'A' ? A.tenant.id : B.tenant.id),
    });
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  // -------------------------------------------------------------------------------------------
  // Helpers.

  const tenantOf = (t: 'A' | 'B') => (t === 'A' ? A : B);
  const hostOf = (w: TenantWorld) => `${w.tenant.slug}.${BASE_HOST}`;

  /**
   * Run, remembering which classes reached which operation. A person's own logout-all ends all
   * their sessions, access tokens included: they sign in again (in place) and the suite goes on.
   */
  async function run(op: Operation | null, a: Attempt): Promise<LightMyRequestResponse> {
    if (op) {
      const set = attacked.get(op.key) ?? new Set<string>();
      set.add(a.cls);
      attacked.set(op.key, set);
    }
    const res = await r.run(a);
    if (op?.key === 'POST /api/v1/auth/logout-all' && res.statusCode < 300) {
      const people = [A, B].flatMap((w) => [...Object.values(w.users), w.member, w.tenant.owner]);
      const who = people.find((u) => u.auth.authorization === a.headers?.authorization);
      if (!who) throw new Error(`logout-all succeeded for a caller the suite does not know (${a.principal})`);
      await renewSession(app, who);
    }
    return res;
  }

  /** Required query parameters (and `q`, which looks for the target's secret). */
  function queryFor(op: Operation, w: TenantWorld, extra: Record<string, string> = {}): Record<string, string> {
    const q: Record<string, string> = {};
    for (const p of op.query) {
      if (p.name === 'q') q.q = w.secret;
      else if (p.required) q[p.name] = String(gen.value(p.schema, p.name));
    }
    return { ...q, ...extra };
  }

  /** The legacy /ghost/api/{apiVersion}/content prefixes (aliases of the canonical ones). */
  const isAlias = (op: Operation) => op.surface === 'content' && op.path.includes('/{apiVersion}/');
  const isPublic = (op: Operation) => op.surface === 'content' || op.surface === 'feed';
  const maySee = (base: MarkerKind[], op: Operation): MarkerKind[] =>
    op.surface === 'feed' ? [...base, 'A-pub', 'B-pub'] : base;
  /** The path parameters naming a resource of B's (whose value for B is not A's); tenantSlug aside. */
  const bIds = (op: Operation) => {
    const a = bindings(op, A, unresolved)[0]!;
    const b = bindings(op, B, unresolved)[0]!;
    return op.pathParams.filter((n) => n !== 'tenantSlug' && a[n] !== b[n]);
  };
  const hasIds = (op: Operation) => bIds(op).length > 0;

  function principals(): Principal[] {
    const users: Principal[] = ROLES.map((role) => ({
      label: `A ${role}`,
      kind: 'user',
      creds: [{ via: 'Bearer', headers: A.users[role].auth }],
      maySee: ['A-priv', 'A-pub'],
      user: A.users[role],
    }));
    return [
      ...users,
      { label: 'A content key', kind: 'content-key', creds: keyCreds(A.contentKey.key), maySee: ['A-pub'] },
    ];
  }

  function apiKeyPrincipal(scope: ApiKeyScope): Principal {
    const k = A.apiKeys[scope]!;
    return { label: `A API key (${scope})`, kind: 'api-key', creds: keyCreds(k.key), maySee: ['A-priv', 'A-pub'] };
  }

  /** Every operation × credential × way of naming B, for one principal of A. */
  function crossTenantAttempts(p: Principal): Array<[Operation, Attempt]> {
    const out: Array<[Operation, Attempt]> = [];
    for (const op of ops) {
      const bBinds = bindings(op, B, unresolved);
      for (const cred of p.creds) {
        if (cred.query && !isPublic(op)) continue;
        const v: Array<{ label: string; headers: Record<string, string>; params: Record<string, string>; b: boolean }> =
          [];
        for (const params of bBinds) {
          const h = cred.headers;
          switch (op.surface) {
            case 'staff':
              v.push({ label: 'X-Tenant-ID B', headers: { ...h, 'x-tenant-id': B.tenant.id }, params, b: true });
              v.push({ label: 'host of B', headers: { ...h, host: hostOf(B) }, params, b: true });
              if (hasIds(op)) {
                v.push({
                  label: 'X-Tenant-ID A, B ids',
                  headers: { ...h, 'x-tenant-id': A.tenant.id },
                  params,
                  b: true,
                });
                v.push({ label: 'no tenant named, B ids', headers: h, params, b: true });
              }
              break;
            case 'tenant-path':
              v.push({ label: 'B in path', headers: h, params, b: true });
              v.push({
                label: 'B in path, X-Tenant-ID A',
                headers: { ...h, 'x-tenant-id': A.tenant.id },
                params,
                b: true,
              });
              if (bIds(op).some((n) => n !== 'id'))
                v.push({ label: 'A in path, B ids', headers: h, params: { ...params, id: A.tenant.id }, b: true });
              break;
            case 'global':
              v.push({ label: 'X-Tenant-ID B', headers: { ...h, 'x-tenant-id': B.tenant.id }, params, b: false });
              break;
            case 'content':
              if (op.pathParams.includes('tenantSlug')) {
                v.push({ label: 'B site', headers: h, params, b: true });
                if (hasIds(op))
                  v.push({
                    label: 'A site, B ids',
                    headers: h,
                    params: { ...params, tenantSlug: A.tenant.slug },
                    b: true,
                  });
              } else {
                v.push({ label: 'host of B', headers: { ...h, host: hostOf(B) }, params, b: true });
                if (hasIds(op)) v.push({ label: 'own site, B ids', headers: h, params, b: true });
              }
              break;
            case 'feed':
              v.push({
                label: 'B site',
                headers: op.pathParams.includes('tenantSlug') ? h : { ...h, host: hostOf(B) },
                params,
                b: false,
              });
              break;
          }
        }
        for (const x of v) {
          out.push([
            op,
            {
              cls: 'cross-tenant',
              principal: `${p.label} (${cred.via}) · ${x.label}`,
              method: op.method,
              url: urlOf(op, x.params, queryFor(op, B, cred.query)),
              headers: x.headers,
              payload: gen.body(op),
              maySee: maySee(p.maySee, op),
              judge: x.b ? (res) => (is2xx(res) ? `2xx from tenant B's ${op.key}` : undefined) : undefined,
              watch: op.method === 'GET' ? undefined : ['B'],
              expectRoute: !isPublic(op),
            },
          ]);
        }
      }
    }
    return out;
  }

  /**
   * The control before a principal attacks: its credential works in A (else every refusal
   * below would prove nothing). Not counted as an attempt.
   */
  async function control(p: Principal) {
    const url =
      p.kind === 'content-key'
        ? `/ghost/api/content/posts/?key=${p.creds[0]!.query!.key}`
        : p.label.includes('members:read')
          ? `/api/v1/tenants/${A.tenant.id}/members`
          : '/api/v1/posts';
    for (const cred of p.creds.filter((c) => (p.kind === 'content-key' ? c.query : !c.query))) {
      const res = await app.inject({ method: 'GET', url, headers: { ...cred.headers, 'x-tenant-id': A.tenant.id } });
      expect(res.statusCode, `${p.label} (${cred.via}) in its own tenant: ${res.body.slice(0, 200)}`).toBe(200);
    }
  }

  async function attackAs(p: Principal) {
    await control(p);
    const all = crossTenantAttempts(p);
    for (const op of ops) {
      const mine = all.filter(([o]) => o === op);
      await r.batch(`${p.label}: ${op.key}`, async () => {
        for (const [, a] of mine) await run(op, a);
      });
    }
    if (p.user) {
      // A session bound to B (the `tid` claim) is refused at sign-in.
      await run(null, {
        cls: 'cross-tenant',
        principal: `${p.label} · sign-in bound to B`,
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: p.user.email, password: PASSWORD, tenantId: B.tenant.id },
        maySee: p.maySee,
        judge: (res) => (is2xx(res) ? 'signed in with a session bound to tenant B' : undefined),
        watch: ['B'],
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // The suite checks itself first: every operation is reached with real ids and valid bodies.

  it('reads every operation of the OpenAPI document and builds valid requests for them', async () => {
    expect(ops.length).toBeGreaterThan(100);
    for (const s of ['staff', 'tenant-path', 'global', 'content', 'feed']) {
      expect(
        ops.some((o) => o.surface === s),
        s,
      ).toBe(true);
    }
    // Validation runs before authentication: a secured operation that answers 401 to a
    // credential-less request has accepted the generated body, parameters and query.
    const invalid: string[] = [];
    for (const op of ops.filter((o) => o.secured)) {
      for (const params of bindings(op, A, unresolved)) {
        const res = await app.inject({
          method: op.method,
          url: urlOf(op, params, queryFor(op, A)),
          headers: { 'x-tenant-id': A.tenant.id },
          ...(op.body && { payload: gen.body(op) as object }),
        });
        if (res.statusCode !== 401) invalid.push(`${op.key} → ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
    }
    expect(invalid, 'generated requests the app rejects before authentication').toEqual([]);
    expect([...unresolved], 'path parameters with no real resource to fill them').toEqual([]);
  });

  // -------------------------------------------------------------------------------------------
  // Cross-tenant: each principal of A against B.

  it.each(ROLES)(
    "A's %s reaches nothing of B's through any operation",
    async (role) => {
      const p = principals().find((x) => x.label === `A ${role}`)!;
      await attackAs(p);
    },
    300_000,
  );

  it("A's content key reaches nothing of B's (public surface included)", async () => {
    await attackAs(principals().find((x) => x.kind === 'content-key')!);
  }, 300_000);

  it.each(API_KEY_SCOPES)(
    "A's admin API key (%s) reaches nothing of B's",
    async (scope) => {
      if (!apiKeys.available) throw new Error(`API-key principal "${scope}" cannot attack: ${apiKeys.reason}`);
      await attackAs(apiKeyPrincipal(scope));
      // Escalation within A: a key cannot mint a broader key.
      await run(null, {
        cls: 'mass-assignment',
        principal: `A API key (${scope}) · mints an admin key`,
        method: 'POST',
        url: `/api/v1/tenants/${A.tenant.id}/api-keys`,
        headers: { authorization: `Bearer ${A.apiKeys[scope]!.key}` },
        payload: { name: 'escalated', scopes: ['admin'] },
        maySee: ['A-priv', 'A-pub'],
        judge: (res) => (is2xx(res) ? 'an API key created an admin API key' : undefined),
      });
    },
    300_000,
  );

  it('revoked keys are refused everywhere, even in their own tenant', async () => {
    const revoked: Array<[string, string]> = [['content key', revokedContentKey]];
    if (revokedApiKey && expiredApiKey) {
      // Not a timing assertion: the key's expiry is simply waited out if the suite got here first.
      const wait = expiredApiKey.expiresAt + 50 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      revoked.push(['admin API key', revokedApiKey], ['expired admin API key', expiredApiKey.key]);
    }
    for (const op of ops) {
      await r.batch(op.key, async () => {
        for (const params of bindings(op, A, unresolved).slice(0, 1)) {
          for (const [label, key] of revoked) {
            for (const cred of keyCreds(key)) {
              if (cred.query && !isPublic(op)) continue;
              await run(op, {
                cls: 'revoked-key',
                principal: `A revoked ${label} (${cred.via})`,
                method: op.method,
                url: urlOf(op, params, queryFor(op, A, cred.query)),
                headers: op.surface === 'staff' ? { ...cred.headers, 'x-tenant-id': A.tenant.id } : cred.headers,
                payload: gen.body(op),
                maySee: maySee([], op),
                judge: (res) =>
                  is2xx(res) && (op.secured || op.surface === 'content')
                    ? `revoked key got ${res.statusCode}`
                    : undefined,
                watch: op.method === 'GET' ? undefined : ['A'],
              });
            }
          }
        }
      });
    }
    if (!apiKeys.available)
      throw new Error(`the revoked and expired API-key principals cannot attack: ${apiKeys.reason}`);
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Unauthenticated callers.

  it('unauthenticated callers get nothing from any operation', async () => {
    const anonymous: Credential[] = [
      { via: 'no credentials', headers: {} },
      { via: 'empty bearer', headers: { authorization: 'Bearer ' } },
      { via: 'basic auth', headers: { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` } },
      { via: 'bearer null', headers: { authorization: 'Bearer null' } },
      { via: 'unknown X-API-Key', headers: { 'x-api-key': `qk_${hex(16)}` } },
      { via: 'unknown content key', headers: {}, query: { key: hex(13) } },
      { via: 'refresh token as bearer', headers: { authorization: `Bearer ${A.tenant.owner.refreshToken}` } },
    ];
    for (const op of ops) {
      await r.batch(op.key, async () => {
        for (const target of ['B', 'A'] as const) {
          const w = tenantOf(target);
          const params = bindings(op, w, unresolved)[0]!;
          for (const cred of anonymous) {
            if (cred.query && !isPublic(op)) continue;
            if (target === 'A' && cred.via !== 'no credentials') continue;
            const headers: Record<string, string> = { ...cred.headers };
            if (op.surface === 'staff') headers['x-tenant-id'] = w.tenant.id;
            if (isPublic(op) && !op.pathParams.includes('tenantSlug')) headers.host = hostOf(w);
            await run(op, {
              cls: 'unauthenticated',
              principal: `anonymous (${cred.via}) → ${target}`,
              method: op.method,
              url: urlOf(op, params, queryFor(op, w, cred.query)),
              headers,
              payload: gen.body(op),
              maySee: maySee([], op),
              judge: (res) =>
                is2xx(res) && (op.secured || op.surface === 'content')
                  ? `unauthenticated ${res.statusCode} from ${op.key}`
                  : undefined,
              watch: op.method === 'GET' ? undefined : [target],
              expectRoute: !isPublic(op),
            });
          }
        }
      });
    }
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Forged access tokens.

  it('forged JWTs (expired, tampered, alg none, wrong kid or key, bad iss/aud) get 401 on every authenticated operation', async () => {
    const list = forgeries({
      real: A.tenant.owner.accessToken,
      secret: TEST_JWT_SECRET,
      victim: { sub: B.tenant.owner.id, tid: B.tenant.id },
    });
    // The control: the genuine token passes where the forgeries must not.
    const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: A.tenant.owner.auth });
    expect(me.statusCode).toBe(200);
    // The core forgeries against every authenticated operation; the rest against a
    // representative set (one per surface and method, and every members, keys and export route).
    const secured = ops.filter((o) => o.secured);
    const seen = new Set<string>();
    const representative = new Set(
      secured.filter((o) => {
        const k = `${o.surface} ${o.method}`;
        const first = !seen.has(k);
        seen.add(k);
        return first || /members|api-keys|content-keys|exports|audit|security|mfa/.test(o.path);
      }),
    );
    for (const op of secured) {
      await r.batch(op.key, async () => {
        for (const f of list.filter((x) => x.core || representative.has(op))) {
          const w = f.targetsB ? B : A;
          const params = bindings(op, w, unresolved)[0]!;
          await run(op, {
            cls: 'forged-jwt',
            principal: `forged JWT: ${f.label}`,
            method: op.method,
            url: urlOf(op, params, queryFor(op, w)),
            headers: { authorization: `Bearer ${f.token}`, 'x-tenant-id': w.tenant.id },
            payload: gen.body(op),
            maySee: [],
            judge: (res) => (res.statusCode !== 401 ? `forged token answered ${res.statusCode}, not 401` : undefined),
            watch: op.method === 'GET' ? undefined : [w.name],
            expectRoute: true,
          });
        }
      });
    }
  }, 300_000);

  it('with asymmetric signing (Ed25519), HS256 signed with the public key, alg none, another key and the old HS256 tokens get 401', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const other = await createTestApp(tdb.db, { BASE_HOST, JWT_PRIVATE_KEY: pem, JWT_KEY_ID: 'ed-1' });
    try {
      const login = await other.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: A.tenant.owner.email, password: PASSWORD },
      });
      expect(login.statusCode).toBe(200);
      const real = login.json().data.accessToken as string;
      const { header, payload } = decode(real);
      expect(header.alg).toBe('EdDSA');
      const jwks = (await other.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
      const publicPem = createPublicKey({ key: jwks.keys[0], format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString();
      const attacker = generateKeyPairSync('ed25519');
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const signEd = (h: object, p: object) => {
        const data = `${b64(h)}.${b64(p)}`;
        return `${data}.${sign(null, Buffer.from(data), attacker.privateKey).toString('base64url')}`;
      };
      const tokens: Array<[string, string]> = [
        ['HS256 signed with the public key (PEM)', hmac({ alg: 'HS256', typ: 'JWT', kid: 'ed-1' }, payload, publicPem)],
        ['HS256 signed with the public key (no kid)', hmac({ alg: 'HS256', typ: 'JWT' }, payload, publicPem)],
        ['alg none, right kid', `${b64({ alg: 'none', kid: 'ed-1' })}.${b64(payload)}.`],
        ['EdDSA signed with another key, right kid', signEd(header, payload)],
        ["the HS256 app's genuine token", A.tenant.owner.accessToken],
        ['HS256 with the old test secret, no kid', hmac({ alg: 'HS256', typ: 'JWT' }, payload, TEST_JWT_SECRET)],
      ];
      const control = await other.inject({
        method: 'GET',
        url: '/api/v1/auth/me',
        headers: { authorization: `Bearer ${real}` },
      });
      expect(control.statusCode).toBe(200);
      const r2 = runner({
        app: () => other,
        db: kind.name,
        markers: () => builder.markers,
        snapshot: (t) => snap.digest(t === 'A' ? A.tenant.id : B.tenant.id),
      });
      for (const [label, token] of tokens) {
        for (const op of ops.filter((o) => o.secured)) {
          const params = bindings(op, A, unresolved)[0]!;
          await r2.run({
            cls: 'forged-jwt',
            principal: `asymmetric signing: ${label}`,
            method: op.method,
            url: urlOf(op, params, queryFor(op, A)),
            headers: { authorization: `Bearer ${token}`, 'x-tenant-id': A.tenant.id },
            payload: gen.body(op),
            maySee: [],
            judge: (res) => (res.statusCode !== 401 ? `answered ${res.statusCode}, not 401` : undefined),
            watch: op.method === 'GET' ? undefined : ['A'],
          });
        }
      }
    } finally {
      await other.close();
    }
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Malformed bodies.

  it('malformed, oversized and wrong-content-type bodies get 4xx and write nothing', async () => {
    const limit = 1_048_576;
    const bodies: Array<{ label: string; payload: string | Buffer; type: string; status: number[] }> = [
      { label: 'truncated JSON', payload: '{"title": "x",', type: 'application/json', status: [400] },
      { label: 'single-quoted JSON', payload: "{'title': 'x'}", type: 'application/json', status: [400] },
      { label: 'trailing garbage', payload: '{"title": "x"} trailing', type: 'application/json', status: [400] },
      { label: 'empty JSON body', payload: '', type: 'application/json', status: [400] },
      { label: 'array root', payload: '[]', type: 'application/json', status: [400] },
      {
        label: 'deeply nested JSON',
        payload: `{"title":${'['.repeat(5000)}${']'.repeat(5000)}}`,
        type: 'application/json',
        status: [400],
      },
      {
        label: 'oversized body',
        payload: JSON.stringify({ title: 'x', body: 'y'.repeat(limit + 1024), name: 'x' }),
        type: 'application/json',
        status: [413],
      },
      { label: 'text/plain', payload: '{"title":"x","body":"y","name":"x"}', type: 'text/plain', status: [415] },
      {
        label: 'form-urlencoded',
        payload: 'title=x&body=y&name=x',
        type: 'application/x-www-form-urlencoded',
        status: [415],
      },
      {
        label: 'multipart',
        payload: '--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--b--\r\n',
        type: 'multipart/form-data; boundary=b',
        status: [415],
      },
      { label: 'XML', payload: '<post><title>x</title></post>', type: 'application/xml', status: [415] },
      {
        label: 'JSON as UTF-16',
        payload: Buffer.from('{"title":"x"}', 'utf16le'),
        type: 'application/json; charset=utf-16',
        status: [400, 415],
      },
    ];
    for (const op of ops.filter((o) => o.body)) {
      await r.batch(op.key, async () => {
        const global = op.surface === 'global';
        const w = A;
        const params = bindings(op, w, unresolved)[0]!;
        const headers = global ? probe.auth : { ...A.tenant.owner.auth, 'x-tenant-id': A.tenant.id };
        const valid = gen.body(op);
        const pollution = (key: string) =>
          `{${valid && typeof valid === 'object' ? JSON.stringify(valid).slice(1, -1) : '"title":"x"'}${
            valid && typeof valid === 'object' && Object.keys(valid).length ? ',' : ''
          }"${key}": {"role": "owner", "isAdmin": true, "prototype": {"role": "owner"}}}`;
        const all = [
          ...bodies,
          { label: '__proto__ pollution', payload: pollution('__proto__'), type: 'application/json', status: [400] },
          {
            label: 'constructor pollution',
            payload: pollution('constructor'),
            type: 'application/json',
            status: [400],
          },
        ];
        for (const b of all) {
          await run(op, {
            cls: 'body',
            principal: global ? 'probe user' : 'A owner',
            method: op.method,
            url: urlOf(op, params, queryFor(op, w)),
            headers: { ...headers, 'content-type': b.type },
            payload: b.payload,
            maySee: ['A-priv', 'A-pub'],
            judge: (res) =>
              b.status.includes(res.statusCode)
                ? undefined
                : `${b.label} answered ${res.statusCode}, not ${b.status.join('/')}`,
            watch: ['A', 'B'],
            expectRoute: true,
          });
        }
      });
    }
    // Nothing polluted this process's prototypes.
    expect(({} as Record<string, unknown>).role).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Path traversal.

  it('path traversal in slug and id parameters never resolves, reads a file or errors', async () => {
    // Every path parameter (slugs, ids, the site slug, domains…) but the API version.
    const traversable = (n: string) => n !== 'apiVersion';
    for (const op of ops.filter((o) => o.pathParams.some(traversable))) {
      await r.batch(op.key, async () => {
        const base = bindings(op, A, unresolved)[0]!;
        for (const name of op.pathParams.filter(traversable)) {
          for (const t of isAlias(op) ? TRAVERSAL.slice(0, 5) : TRAVERSAL) {
            // Spliced in as written (already encoded where it says so), not encoded again.
            const marker = `__TRAVERSAL_${hex()}__`;
            const url = urlOf(
              op,
              { ...base, [name]: marker },
              queryFor(op, A, isPublic(op) ? { key: A.contentKey.key } : {}),
            ).replace(marker, t);
            await run(op, {
              cls: 'path-traversal',
              principal: isPublic(op) ? 'A content key' : 'A owner',
              method: op.method,
              url,
              headers:
                op.surface === 'staff' ? { ...A.tenant.owner.auth, 'x-tenant-id': A.tenant.id } : A.tenant.owner.auth,
              payload: gen.body(op),
              maySee: isPublic(op)
                ? ['A-pub', ...(op.surface === 'feed' ? (['B-pub'] as MarkerKind[]) : [])]
                : ['A-priv', 'A-pub'],
              // A URL with dot segments is normalized before routing (WHATWG URL): it then names
              // another route, one the principal may call; the leak checks judge what came back.
              judge: (res) =>
                is2xx(res) && new URL(url, 'http://localhost').pathname === url.split('?')[0]
                  ? `traversal ${JSON.stringify(t)} in {${name}} resolved (${res.statusCode})`
                  : undefined,
              watch: op.method === 'GET' ? undefined : ['A', 'B'],
            });
          }
        }
      });
    }
    // Raw dot segments across the whole URL, and from one site's prefix into another's.
    const raw = [
      '/api/v1/posts/../../../etc/passwd',
      '/api/v1/../../etc/passwd',
      `/s/${A.tenant.slug}/../${B.tenant.slug}/ghost/api/content/posts/?key=${A.contentKey.key}`,
      `/s/${A.tenant.slug}/%2e%2e/${B.tenant.slug}/ghost/api/content/posts/?key=${A.contentKey.key}`,
      `/ghost/api/content/posts/..%2f..%2f..%2fetc%2fpasswd/?key=${A.contentKey.key}`,
      `/api/v1/exports/..%2f..%2f${B.tenant.id}%2f${B.exportJobId}`,
      `/api/v1/exports/${B.exportJobId}%00.json`,
    ];
    for (const url of raw) {
      await run(null, {
        cls: 'path-traversal',
        principal: 'A owner',
        method: 'GET',
        url,
        headers: { ...A.tenant.owner.auth, 'x-tenant-id': A.tenant.id },
        maySee: ['A-priv', 'A-pub'],
        judge: (res) =>
          is2xx(res) && new URL(url, 'http://localhost').pathname === url.split('?')[0]
            ? `raw traversal resolved (${res.statusCode})`
            : undefined,
      });
    }
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // The public surface: only what is published, only with the tenant's own key.

  it("the public surface shows only published content, and A's key only A's", async () => {
    const key = A.contentKey.key;
    const priv = [A.posts.draft, A.posts.archived, A.posts.scheduled];
    const filters = [
      'status:draft',
      'status:scheduled',
      'status:archived',
      `id:'${A.posts.draft.id}'`,
      `slug:${A.posts.draft.slug}`,
      `slug:[${priv.map((p) => p.slug).join(',')}]`,
      `id:-'${A.posts.published.id}'`,
      'visibility:internal',
      `tenant_id:'${B.tenant.id}'`,
      `published_at:>'2100-01-01'`,
    ];
    const reads: string[] = [];
    for (const resource of ['posts', 'pages', 'tags', 'authors']) {
      for (const filter of filters)
        reads.push(`/ghost/api/content/${resource}/?key=${key}&filter=${encodeURIComponent(filter)}&limit=all`);
    }
    for (const p of [...priv, A.pages.draft]) {
      const res = p === A.pages.draft ? 'pages' : 'posts';
      reads.push(
        `/ghost/api/content/${res}/${p.id}/?key=${key}`,
        `/ghost/api/content/${res}/slug/${p.slug}/?key=${key}`,
      );
      reads.push(`/s/${A.tenant.slug}/ghost/api/content/${res}/slug/${p.slug}/?key=${key}&formats=html,plaintext`);
    }
    reads.push(`/ghost/api/content/tags/${A.tags.internal.id}/?key=${key}`);
    reads.push(`/ghost/api/content/search/?key=${key}&q=${A.secret}`);
    for (const [label, url] of reads.map((u) => ['A content key', u] as const)) {
      const single = /\/(posts|pages|tags)\/(slug\/[^/]+|[0-9a-f-]{36})\/\?/.test(url);
      await run(null, {
        cls: 'public-surface',
        principal: label,
        method: 'GET',
        url,
        maySee: ['A-pub'],
        judge: single
          ? (res) => (is2xx(res) ? 'an unpublished item read through the Content API' : undefined)
          : undefined,
      });
    }
    // Feeds and discovery documents of both tenants, anonymously: never an unpublished item, an email.
    for (const w of [A, B]) {
      for (const doc of ['rss/', 'atom.xml', 'feed.json', 'sitemap.xml', 'robots.txt', 'llms.txt']) {
        await run(null, {
          cls: 'public-surface',
          principal: 'anonymous',
          method: 'GET',
          url: `/s/${w.tenant.slug}/${doc}`,
          maySee: ['A-pub', 'B-pub'],
        });
        await run(null, {
          cls: 'public-surface',
          principal: 'anonymous (host)',
          method: 'GET',
          url: `/${doc}`,
          headers: { host: hostOf(w) },
          maySee: ['A-pub', 'B-pub'],
        });
      }
    }
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Injection: SQL, NQL and script payloads everywhere a string goes.

  it('SQL, NQL and script payloads in every string field, query and path parameter are inert', async () => {
    for (const op of ops) {
      await r.batch(op.key, async () => {
        const global = op.surface === 'global';
        const publicOp = isPublic(op);
        const params = bindings(op, A, unresolved)[0]!;
        const headers: Record<string, string> = publicOp ? {} : global ? { ...probe.auth } : { ...A.tenant.owner.auth };
        if (op.surface === 'staff') headers['x-tenant-id'] = A.tenant.id;
        const keyQuery: Record<string, string> = op.surface === 'content' ? { key: A.contentKey.key } : {};
        const see: MarkerKind[] = publicOp
          ? op.surface === 'feed'
            ? ['A-pub', 'B-pub']
            : ['A-pub']
          : ['A-priv', 'A-pub'];
        const principal = publicOp ? 'A content key' : global ? 'probe user' : 'A owner';
        const attempt = (url: string, payload: unknown, h = headers): Attempt => ({
          cls: 'injection',
          principal,
          method: op.method,
          url,
          headers: h,
          payload,
          maySee: see,
          watch: op.method === 'GET' ? undefined : ['B'],
        });
        // The legacy /ghost/api/{version}/content aliases share every handler with the canonical
        // prefixes, which get every payload: the aliases get a sample.
        const payloads = isAlias(op) ? INJECTION_SAMPLE : INJECTION;
        // Body fields.
        const schema = gen.objectSchema(op);
        if (schema) {
          for (const f of stringFields(gen, schema)) {
            for (const p of INJECTION) {
              const body = gen.body(op) as Record<string, unknown>;
              body[f.name] = f.array ? [p] : p;
              await run(op, attempt(urlOf(op, params, queryFor(op, A, keyQuery)), body));
            }
          }
        }
        // Query parameters.
        for (const q of op.query) {
          const list = q.name === 'filter' && !isAlias(op) ? [...payloads, ...NQL(B.tenant.id)] : payloads;
          for (const p of list) {
            await run(op, attempt(urlOf(op, params, queryFor(op, A, { ...keyQuery, [q.name]: p })), gen.body(op)));
          }
        }
        // Path parameters.
        for (const name of op.pathParams) {
          for (const p of payloads) {
            await run(op, attempt(urlOf(op, { ...params, [name]: p }, queryFor(op, A, keyQuery)), gen.body(op)));
          }
        }
        // Headers the app reads.
        if (op.surface === 'staff') {
          for (const p of INJECTION.slice(0, 4)) {
            await run(op, attempt(urlOf(op, params, queryFor(op, A)), gen.body(op), { ...headers, 'x-tenant-id': p }));
            await run(op, attempt(urlOf(op, params, queryFor(op, A)), gen.body(op), { ...headers, 'if-match': p }));
          }
        }
      });
    }
  }, 600_000);

  it('script payloads stored in every field come back sanitized in HTML fields and feeds', async () => {
    const h = A.tenant.as(A.tenant.owner);
    const xss = '<script>alert(1)</script>';
    const img = '"><img src=x onerror=alert(1)>';
    const body = [
      '# Title',
      xss,
      img,
      '[click](javascript:alert(1))',
      '<a href="javascript:alert(1)">a</a> <iframe src="https://evil.example"></iframe>',
      '<svg/onload=alert(1)>',
      '`<script>alert(2)</script>` and text: <script>alert(3)</script>',
      ']]><script>alert(4)</script><![CDATA[',
    ].join('\n\n');
    const stored = {
      title: `${xss} ${img}`,
      body,
      customExcerpt: `${xss} ${img}`,
      featureImageAlt: img,
      featureImageCaption: xss,
      metaTitle: xss,
      metaDescription: img,
      ogTitle: xss,
      ogDescription: img,
      twitterTitle: xss,
      twitterDescription: img,
      tags: [`${xss}`, `tag ${img}`],
    };
    const write = async (method: 'POST' | 'PUT' | 'PATCH', url: string, payload: object, headers = h) =>
      run(null, {
        cls: 'stored-xss',
        principal: 'A owner',
        method,
        url,
        headers,
        payload,
        maySee: ['A-priv', 'A-pub'],
        judge: (res) => (is2xx(res) ? undefined : `could not store the payload (${res.statusCode})`),
      });
    const post = (await write('POST', '/api/v1/posts', { ...stored, slug: `xss-${hex()}` })).json().data;
    await write('POST', `/api/v1/posts/${post.id}/publish`, {});
    const page = (await write('POST', '/api/v1/pages', { ...stored, slug: `xss-page-${hex()}` })).json().data;
    await write('POST', `/api/v1/pages/${page.id}/publish`, {});
    await write(
      'PUT',
      `/api/v1/tenants/${A.tenant.id}/settings`,
      { title: `Site ${xss}`, description: `About ${img}` },
      A.tenant.owner.auth,
    );
    await write('PATCH', `/api/v1/authors/${A.tenant.owner.id}`, { bio: img, location: xss });
    const key = A.contentKey.key;
    const reads = [
      ...['rss/', 'atom.xml', 'feed.json', 'sitemap.xml', 'llms.txt'].map((d) => `/s/${A.tenant.slug}/${d}`),
      ...['posts', 'pages'].map(
        (r) => `/ghost/api/content/${r}/?key=${key}&include=tags,authors&formats=html,plaintext`,
      ),
      `/ghost/api/content/posts/${post.id}/?key=${key}&include=tags,authors`,
      `/ghost/api/content/tags/?key=${key}&include=count.posts`,
      `/ghost/api/content/authors/?key=${key}`,
      `/ghost/api/content/settings/?key=${key}`,
      `/ghost/api/content/search/?key=${key}&q=alert`,
      `/ghost/api/content/search/?key=${key}&q=${encodeURIComponent(xss)}`,
    ];
    for (const url of reads) {
      await run(null, {
        cls: 'stored-xss',
        principal: 'anonymous / A content key',
        method: 'GET',
        url,
        maySee: ['A-pub', 'B-pub'],
      });
    }
    for (const url of [
      `/api/v1/posts/${post.id}`,
      `/api/v1/pages/${page.id}`,
      '/api/v1/search?q=alert',
      `/api/v1/posts/${post.id}/revisions`,
    ]) {
      await run(null, {
        cls: 'stored-xss',
        principal: 'A owner',
        method: 'GET',
        url,
        headers: h,
        maySee: ['A-priv', 'A-pub'],
      });
    }
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Mass assignment.

  it('mass assignment: tenantId, role, authorId, status, id, timestamps in bodies are rejected or ignored', async () => {
    const injectedId = randomUUID();
    const old = '2001-02-03T04:05:06.000Z';
    const extras: Record<string, unknown> = {
      tenantId: B.tenant.id,
      tenant_id: B.tenant.id,
      role: 'owner',
      authorId: B.tenant.owner.id,
      userId: B.tenant.owner.id,
      createdBy: B.tenant.owner.id,
      ownerId: B.tenant.owner.id,
      status: 'published',
      id: injectedId,
      createdAt: old,
      updatedAt: old,
      publishedAt: old,
      platformAdmin: true,
      emailVerified: true,
      version: 999,
      scopes: ['admin'],
      keyHash: 'x',
      passwordHash: 'x',
    };
    for (const op of ops) {
      const schema = gen.objectSchema(op);
      if (!schema || isPublic(op)) continue;
      const declared = new Set(Object.keys(schema.properties ?? {}));
      // A post created at /pages, or a page at /posts.
      const type = op.path.includes('/pages') ? 'post' : 'page';
      const added = Object.fromEntries(Object.entries({ ...extras, type }).filter(([k]) => !declared.has(k)));
      const global = op.surface === 'global';
      const params = bindings(op, A, unresolved)[0]!;
      const headers = global ? probe.auth : { ...A.tenant.owner.auth, 'x-tenant-id': A.tenant.id };
      await run(op, {
        cls: 'mass-assignment',
        principal: global ? 'probe user' : 'A owner',
        method: op.method,
        url: urlOf(op, params, queryFor(op, A)),
        headers,
        payload: { ...(gen.body(op) as object), ...added },
        maySee: ['A-priv', 'A-pub'],
        judge: (res) => {
          if (!is2xx(res) || !res.body) return undefined;
          const d = (res.json() as { data?: Record<string, unknown> }).data;
          if (!d || typeof d !== 'object') return undefined;
          const took = Object.keys(added).filter((k) => k in d && JSON.stringify(d[k]) === JSON.stringify(added[k]));
          return took.length ? `mass-assigned ${took.join(', ')}` : undefined;
        },
        watch: ['B'],
      });
    }

    // Role-specific: nobody below owner makes themselves (or anyone) owner; authors' and viewers' limits hold.
    const me = async (u: TestUser) =>
      (await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: u.auth })).json().data as {
        platformAdmin: boolean;
        user: { emailVerified: boolean };
        memberships: Array<{ tenantId: string; role: MemberRole }>;
      };
    const expectFail = (what: string) => (res: LightMyRequestResponse) => (is2xx(res) ? what : undefined);
    for (const role of ['admin', 'editor', 'author', 'viewer'] as const) {
      const u = A.users[role];
      await run(null, {
        cls: 'mass-assignment',
        principal: `A ${role}`,
        method: 'PATCH',
        url: `/api/v1/tenants/${A.tenant.id}/members/${u.id}`,
        headers: u.auth,
        payload: { role: 'owner' },
        maySee: ['A-priv', 'A-pub'],
        judge: expectFail(`${role} made themselves owner`),
      });
      await run(null, {
        cls: 'mass-assignment',
        principal: `A ${role}`,
        method: 'POST',
        url: `/api/v1/tenants/${A.tenant.id}/members`,
        headers: u.auth,
        payload: { email: `owner-${hex()}@example.com`, role: 'owner' },
        maySee: ['A-priv', 'A-pub'],
        judge: expectFail(`${role} granted the owner role`),
      });
      const m = await me(u);
      expect(m.memberships.find((x) => x.tenantId === A.tenant.id)?.role, `${role}'s role`).toBe(role);
    }
    const author = A.users.author;
    const created = await run(null, {
      cls: 'mass-assignment',
      principal: 'A author',
      method: 'POST',
      url: '/api/v1/posts',
      headers: A.tenant.as(author),
      payload: { title: 'Mass', body: 'x', ...extras, authorId: A.tenant.owner.id, tenantId: B.tenant.id },
      maySee: ['A-priv', 'A-pub'],
      judge: (res) => {
        if (!is2xx(res)) return undefined;
        const d = res.json().data;
        const wrong = [
          d.tenantId !== A.tenant.id && 'tenantId',
          d.status !== 'draft' && 'status',
          d.authorId !== author.id && 'authorId',
          d.id === injectedId && 'id',
          d.createdAt === old && 'createdAt',
          d.type !== 'post' && 'type',
          d.version === 999 && 'version',
        ].filter(Boolean);
        return wrong.length ? `author's create took ${wrong.join(', ')}` : undefined;
      },
      watch: ['B'],
    });
    // Rejected (400) or created with the extras ignored (201): both are right.
    expect([201, 400]).toContain(created.statusCode);
    // The author's own post (else the owner's draft): a co-author from B is refused either way.
    const ownPost = created.statusCode === 201 ? created.json().data.id : A.posts.draft.id;
    await run(null, {
      cls: 'mass-assignment',
      principal: 'A author',
      method: 'POST',
      url: '/api/v1/posts',
      headers: A.tenant.as(author),
      payload: { title: 'Co-authored by B', body: 'x', authors: [B.tenant.owner.id] },
      maySee: ['A-priv', 'A-pub'],
      judge: expectFail("B's owner made co-author of A's post"),
      watch: ['B'],
    });
    await run(null, {
      cls: 'mass-assignment',
      principal: 'A author',
      method: 'PATCH',
      url: `/api/v1/posts/${ownPost}`,
      headers: A.tenant.as(author),
      payload: { authors: [author.id, B.users.editor.id] },
      maySee: ['A-priv', 'A-pub'],
      judge: expectFail("B's editor made co-author"),
      watch: ['B'],
    });
    for (const [label, method, url, payload] of [
      ['viewer creates a published post', 'POST', '/api/v1/posts', { title: 'v', body: 'x', status: 'published' }],
      ['viewer edits a post', 'PATCH', `/api/v1/posts/${A.posts.draft.id}`, { title: 'v' }],
      ['viewer edits the owner’s profile', 'PATCH', `/api/v1/authors/${A.tenant.owner.id}`, { bio: 'v' }],
      ['viewer creates a tag', 'POST', '/api/v1/tags', { name: `v ${hex()}` }],
      ['viewer creates a content key', 'POST', '/api/v1/content-keys', { name: 'v' }],
    ] as const) {
      await run(null, {
        cls: 'mass-assignment',
        principal: 'A viewer',
        method,
        url,
        headers: A.tenant.as(A.users.viewer),
        payload,
        maySee: ['A-priv', 'A-pub'],
        judge: expectFail(label),
      });
    }
    for (const [label, url] of [
      ["author edits the owner's draft", `/api/v1/posts/${A.posts.draft.id}`],
      ["author publishes the owner's draft", `/api/v1/posts/${A.posts.draft.id}/publish`],
    ] as const) {
      await run(null, {
        cls: 'mass-assignment',
        principal: 'A author',
        method: url.endsWith('publish') ? 'POST' : 'PATCH',
        url,
        headers: A.tenant.as(author),
        payload: url.endsWith('publish') ? {} : { title: 'hijacked' },
        maySee: ['A-priv', 'A-pub'],
        judge: expectFail(label),
      });
    }
    // Registration ignores privilege fields; a new tenant never takes B's id.
    const email = `mass-${hex()}@example.com`;
    await run(null, {
      cls: 'mass-assignment',
      principal: 'anonymous',
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email, password: PASSWORD, name: 'Mass', ...extras, tenantId: A.tenant.id },
      maySee: [],
      judge: (res) =>
        res.statusCode === 201 || res.statusCode === 400 ? undefined : `register answered ${res.statusCode}`,
    });
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email, password: PASSWORD },
    });
    if (login.statusCode === 200) {
      const m = await me({ auth: { authorization: `Bearer ${login.json().data.accessToken}` } } as unknown as TestUser);
      expect(m.platformAdmin, 'registration made a platform admin').toBe(false);
      expect(m.user.emailVerified, 'registration verified the email').toBe(false);
      expect(m.memberships, 'registration joined a tenant').toEqual([]);
    }
    const slug = `mass-${hex()}`;
    const t = await run(null, {
      cls: 'mass-assignment',
      principal: 'probe user',
      method: 'POST',
      url: '/api/v1/tenants',
      headers: probe.auth,
      payload: { name: 'Mass', slug, id: B.tenant.id, ownerId: B.tenant.owner.id },
      maySee: [],
      judge: (res) => (is2xx(res) && res.json().data.id === B.tenant.id ? "a new tenant took B's id" : undefined),
      watch: ['B'],
    });
    expect([201, 400]).toContain(t.statusCode);
    // Nothing anywhere took the injected id or the old timestamp.
    const stray = await tdb.db.query(
      `select (select count(*) from posts where id = $1 or created_at < '2002-01-01')::int as posts,
              (select count(*) from tenants where id = $1 or created_at < '2002-01-01')::int as tenants,
              (select count(*) from users where id = $1 or created_at < '2002-01-01')::int as users`,
      [injectedId],
    );
    expect(stray.rows[0]).toEqual({ posts: 0, tenants: 0, users: 0 });
  }, 300_000);

  // -------------------------------------------------------------------------------------------
  // Regressions: bugs this suite found in src, each reproduced exactly.

  it('feeds escape the plain-text excerpt in HTML fields (RSS <description>, Atom <summary type="html">): an excerpt, or a body showing `<script>` in a code span, is never live markup', async () => {
    const author = A.users.author;
    const h = A.tenant.as(author);
    const payloads = { customExcerpt: '<img src=x onerror=alert(1)>', body: 'Try `<script>alert(2)</script>` here.' };
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/posts',
      headers: h,
      payload: { title: 'Feed XSS', slug: `feed-xss-${hex()}`, ...payloads },
    });
    expect(created.statusCode).toBe(201);
    const derived = await app.inject({
      method: 'POST',
      url: '/api/v1/posts',
      headers: h,
      payload: { title: 'Feed XSS derived', slug: `feed-xss-d-${hex()}`, body: payloads.body },
    });
    for (const p of [created, derived]) {
      const pub = await app.inject({ method: 'POST', url: `/api/v1/posts/${p.json().data.id}/publish`, headers: h });
      expect(pub.statusCode).toBe(200);
    }
    // The post's own html is sanitized: the code span is escaped there.
    expect(created.json().data.html).not.toMatch(/<script|onerror=/);
    const rss = (await app.inject({ method: 'GET', url: `/s/${A.tenant.slug}/rss/` })).body;
    const atom = (await app.inject({ method: 'GET', url: `/s/${A.tenant.slug}/atom.xml` })).body;
    const html = [
      ...[...rss.matchAll(/<description>([\s\S]*?)<\/description>/g)].map((m) => m[1]!),
      ...[...atom.matchAll(/<summary type="html">([\s\S]*?)<\/summary>/g)].map((m) => m[1]!),
    ].map((x) => x.replace(/^<!\[CDATA\[([\s\S]*)\]\]>$/, '$1'));
    expect(html.length).toBeGreaterThan(0);
    for (const x of html) expect(x).not.toMatch(/<script|<img[^>]*onerror=/);
  });

  it('a NUL byte or a lone UTF-16 surrogate in any request string is a 400, not a 500 from PostgreSQL (bodies, path parameters of the staff and Content APIs)', async () => {
    const key = A.contentKey.key;
    const h = A.tenant.as(A.tenant.owner);
    const answers = {
      'post title with NUL': await app.inject({
        method: 'POST',
        url: '/api/v1/posts',
        headers: h,
        payload: { title: 'a\u0000b', body: 'x' },
      }),
      'tag name with NUL': await app.inject({
        method: 'POST',
        url: '/api/v1/tags',
        headers: h,
        payload: { name: 'a\u0000b' },
      }),
      'settings title with a lone surrogate': await app.inject({
        method: 'PUT',
        url: `/api/v1/tenants/${A.tenant.id}/settings`,
        headers: A.tenant.owner.auth,
        payload: { title: 'a\ud800b' },
      }),
      'site slug with NUL': await app.inject({ method: 'GET', url: `/s/%00/ghost/api/content/posts/?key=${key}` }),
      'resource slug with NUL': await app.inject({
        method: 'GET',
        url: `/ghost/api/content/posts/slug/a%00b/?key=${key}`,
      }),
    };
    expect((await app.inject({ method: 'GET', url: '/s/%00/rss/' })).statusCode).toBe(400);
    expect(Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, v.statusCode]))).toEqual(
      Object.fromEntries(Object.keys(answers).map((k) => [k, 400])),
    );
  });

  // -------------------------------------------------------------------------------------------
  // The verdict for this database.

  it('every operation was attacked, and B is exactly as it was', async () => {
    const injectable = (op: Operation) =>
      op.surface === 'staff' || op.query.length > 0 || op.pathParams.length > 0 || !!gen.objectSchema(op);
    const need = (op: Operation) => [
      'cross-tenant',
      'unauthenticated',
      ...(injectable(op) ? ['injection'] : []),
      ...(op.secured ? ['forged-jwt'] : []),
      ...(op.body ? ['body'] : []),
    ];
    const gaps = ops.flatMap((op) =>
      need(op)
        .filter((c) => !attacked.get(op.key)?.has(c))
        .map((c) => `${op.key}: no ${c} attempt`),
    );
    const mine = tally.findings.filter((f) => f.db === kind.name);
    if (process.env.SECURITY_FINDINGS_FILE) {
      await writeFile(process.env.SECURITY_FINDINGS_FILE, JSON.stringify({ findings: mine }, null, 1));
    }
    expect.soft(mine.length, `attacks that succeeded:\n${describeFindings(mine)}`).toBe(0);
    expect.soft(gaps, 'operations some attack class never reached').toEqual([]);
    expect.soft(tally.missedRoutes, 'attempts that hit no route (the suite built a wrong URL)').toEqual([]);
    expect.soft(await snap.detail(B.tenant.id), "B's state").toEqual(initialB);
  });
});
