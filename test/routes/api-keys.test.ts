import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createTenant, createUser, type TestTenant, type TestUser } from '../helpers/factories.js';
import { eventually, sleep } from '../helpers/wait.js';

/** What the API answers about a key (the list, and the create response without `key`). */
type ApiKey = {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdBy: string;
  rateLimitPerMinute: number | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
};
type Created = ApiKey & { key: string };
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const KEY_FORMAT = /^qak_[A-Za-z0-9_-]{43}$/;
const DTO_FIELDS = [
  'createdAt',
  'createdBy',
  'expiresAt',
  'id',
  'lastUsedAt',
  'name',
  'prefix',
  'rateLimitPerMinute',
  'revokedAt',
  'scopes',
];
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe.each(databaseKinds)('admin API keys on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let admin: TestUser;
  let editor: TestUser;
  let author: TestUser;
  let viewer: TestUser;
  /** Another organization, of which t's owner is also a member (an admin). */
  let other: TestTenant;

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
    t = await createTenant(app);
    admin = await createMember(app, t, 'admin');
    editor = await createMember(app, t, 'editor');
    author = await createMember(app, t, 'author');
    viewer = await createMember(app, t, 'viewer');
    other = await createTenant(app);
    const joined = await app.inject({
      method: 'POST',
      url: `/api/v1/tenants/${other.id}/members`,
      headers: other.owner.auth,
      payload: { email: t.owner.email, role: 'admin' },
    });
    expect(joined.statusCode, joined.body).toBe(201);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const call = (method: Method, url: string, headers: Record<string, string>, payload?: unknown) =>
    app.inject({ method, url: `/api/v1${url}`, headers, ...(payload !== undefined && { payload: payload as object }) });
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
  const xApiKey = (key: string) => ({ 'x-api-key': key });

  const createKey = (by: TestUser, body: unknown, tenant: TestTenant = t) =>
    call('POST', `/tenants/${tenant.id}/api-keys`, by.auth, body);
  /** A key made by `by` (the owner unless said), checked to be 201. */
  async function mkKey(
    scopes: string[],
    over: { by?: TestUser; name?: string; expiresAt?: string; rateLimitPerMinute?: number } = {},
  ): Promise<Created> {
    const { by = t.owner, name = `Key ${randomBytes(3).toString('hex')}`, ...rest } = over;
    const res = await createKey(by, { name, scopes, ...rest });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().data as Created;
  }
  async function listKeys(tenant: TestTenant = t, by: TestUser = tenant.owner): Promise<ApiKey[]> {
    const res = await call('GET', `/tenants/${tenant.id}/api-keys`, by.auth);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as ApiKey[];
  }
  const listed = async (id: string) => (await listKeys()).find((k) => k.id === id);

  it('owners and admins create keys that are shown once; the list never shows them', async () => {
    const res = await createKey(t.owner, { name: 'CI deploys', scopes: ['content:read', 'members:read'] });
    expect(res.statusCode, res.body).toBe(201);
    const mine = res.json().data as Created;
    expect(mine.key).toMatch(KEY_FORMAT);
    expect(mine).toEqual({
      id: expect.any(String),
      key: mine.key,
      name: 'CI deploys',
      prefix: mine.key.slice(0, 12),
      scopes: ['content:read', 'members:read'],
      createdBy: t.owner.id,
      rateLimitPerMinute: null,
      createdAt: expect.any(String),
      expiresAt: null,
      lastUsedAt: null,
      revokedAt: null,
    });

    const expiresAt = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const theirs = await mkKey(['admin'], { by: admin, name: 'Zapier', expiresAt, rateLimitPerMinute: 120 });
    expect(theirs).toMatchObject({ createdBy: admin.id, scopes: ['admin'], rateLimitPerMinute: 120, expiresAt });
    expect(theirs.key).toMatch(KEY_FORMAT);
    expect(theirs.key).not.toBe(mine.key);

    for (const by of [t.owner, admin]) {
      const keys = await listKeys(t, by);
      for (const k of keys) expect(Object.keys(k).sort()).toEqual(DTO_FIELDS);
      expect(keys.find((k) => k.id === mine.id)).toEqual({ ...mine, key: undefined });
      expect(keys.find((k) => k.id === theirs.id)).toMatchObject({
        name: 'Zapier',
        prefix: theirs.key.slice(0, 12),
        scopes: ['admin'],
        createdBy: admin.id,
        lastUsedAt: null,
        revokedAt: null,
      });
      const text = JSON.stringify(keys);
      expect(text).not.toContain(mine.key);
      expect(text).not.toContain(theirs.key);
    }
    // Another organization sees none of them.
    const theirList = await listKeys(other);
    expect(theirList.map((k) => k.id)).not.toContain(mine.id);
  });

  it('editors, authors and viewers get 403; a non-member gets 404', async () => {
    const before = (await listKeys()).length;
    const victim = await mkKey(['content:read']);
    for (const user of [editor, author, viewer]) {
      expectError(await createKey(user, { name: 'Mine', scopes: ['content:read'] }), 403, 'forbidden');
      expectError(await call('GET', `/tenants/${t.id}/api-keys`, user.auth), 403, 'forbidden');
      expectError(await call('DELETE', `/tenants/${t.id}/api-keys/${victim.id}`, user.auth), 403, 'forbidden');
    }
    const stranger = await createUser(app);
    expectError(await createKey(stranger, { name: 'Mine', scopes: ['admin'] }), 404, 'not_found');
    expectError(await call('GET', `/tenants/${t.id}/api-keys`, stranger.auth), 404, 'not_found');
    expectError(await call('DELETE', `/tenants/${t.id}/api-keys/${victim.id}`, stranger.auth), 404, 'not_found');
    // Nothing was created, nothing revoked.
    const after = await listKeys();
    expect(after).toHaveLength(before + 1);
    expect(after.find((k) => k.id === victim.id)?.revokedAt).toBeNull();
  });

  it('rejects bad bodies with 400 in the error shape and creates nothing', async () => {
    const before = await listKeys();
    const past = new Date(Date.now() - 60_000).toISOString();
    const bad: Array<[string, unknown]> = [
      ['empty scopes', { name: 'x', scopes: [] }],
      ['unknown scope', { name: 'x', scopes: ['superuser'] }],
      ['past expiresAt', { name: 'x', scopes: ['content:read'], expiresAt: past }],
      ['not a date', { name: 'x', scopes: ['content:read'], expiresAt: 'tomorrow' }],
      ['extra field', { name: 'x', scopes: ['content:read'], keyHash: 'aa' }],
      ['no name', { scopes: ['content:read'] }],
      ['blank name', { name: '   ', scopes: ['content:read'] }],
      ['zero rate limit', { name: 'x', scopes: ['content:read'], rateLimitPerMinute: 0 }],
      ['no body', undefined],
    ];
    for (const [what, body] of bad) {
      const res = await createKey(t.owner, body);
      expect(res.statusCode, `${what}: ${res.body}`).toBe(400);
      expectError(res, 400, 'validation_failed');
    }
    expect(await listKeys()).toEqual(before);
  });

  it('names the offending field of a past expiresAt as every validation error does (details[].field)', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const err = expectError(
      await createKey(t.owner, { name: 'x', scopes: ['content:read'], expiresAt: past }),
      400,
      'validation_failed',
    );
    const details = err.details as Array<Record<string, unknown>>;
    expect(details.map((d) => d.field)).toEqual(['body.expiresAt']);
  });

  it('stores only the SHA-256 of a key', async () => {
    const k = await mkKey(['content:read']);
    const one = await tdb.db.query('select key_hash, prefix from api_keys where id = $1', [k.id]);
    expect(one.rows[0]).toEqual({ key_hash: sha256(k.key), prefix: k.key.slice(0, 12) });
    expect(one.rows[0]!.key_hash).toMatch(/^[0-9a-f]{64}$/);
    const all = await tdb.db.query('select * from api_keys');
    expect(all.rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(all.rows)).not.toContain(k.key);
    expect(JSON.stringify(all.rows)).not.toContain(k.key.slice(4));
  });

  it('authenticates with Authorization: Bearer or X-API-Key, never both; a bad key is 401', async () => {
    const k = await mkKey(['content:read']);
    expect((await call('GET', '/posts', bearer(k.key))).statusCode).toBe(200);
    expect((await call('GET', '/posts', xApiKey(k.key))).statusCode).toBe(200);
    // Both headers, even naming the same key, or a key and a person's token.
    expectError(await call('GET', '/posts', { ...bearer(k.key), ...xApiKey(k.key) }), 401);
    expectError(await call('GET', '/posts', { ...t.owner.auth, ...xApiKey(k.key) }), 401);

    const unknown = `qak_${randomBytes(32).toString('base64url')}`;
    expect(unknown).toMatch(KEY_FORMAT);
    for (const bad of ['qak_short', `${k.key}x`, unknown, `qak_${'!'.repeat(43)}`]) {
      expectError(await call('GET', '/posts', bearer(bad)), 401, 'invalid_api_key');
      expectError(await call('GET', '/posts', xApiKey(bad)), 401, 'invalid_api_key');
    }
    expectError(await call('GET', '/posts', xApiKey('not a key at all')), 401, 'invalid_api_key');
    // X-API-Key twice.
    expectError(
      await app.inject({ method: 'GET', url: '/api/v1/posts', headers: { 'x-api-key': [k.key, k.key] } }),
      401,
      'invalid_api_key',
    );
    expectError(await call('GET', '/posts', xApiKey('')), 401, 'invalid_api_key');
  });

  it('a content:read key reads content and writes nothing', async () => {
    const k = bearer((await mkKey(['content:read'])).key);
    for (const url of ['/posts', '/pages', '/tags', '/authors']) {
      const res = await call('GET', url, k);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    }
    expectError(await call('POST', '/posts', k, { title: 'Nope', body: 'x' }), 403, 'insufficient_scope');
    expectError(await call('POST', '/tags', k, { name: 'Nope' }), 403, 'insufficient_scope');
    expectError(await call('GET', `/tenants/${t.id}/members`, k), 403, 'insufficient_scope');
  });

  it('a content:write key writes posts as its creator and manages tags, but reads no members', async () => {
    const k = xApiKey((await mkKey(['content:write'], { by: admin })).key);
    const created = await call('POST', '/posts', k, { title: 'By key', body: 'Written by an integration' });
    expect(created.statusCode, created.body).toBe(201);
    const post = created.json().data;
    expect(post.authorId).toBe(admin.id);
    const edited = await call('PATCH', `/posts/${post.id}`, k, { title: 'By key, edited', version: post.version });
    expect(edited.statusCode, edited.body).toBe(200);
    const published = await call('POST', `/posts/${post.id}/publish`, k, {});
    expect(published.statusCode, published.body).toBe(200);
    expect(published.json().data.status).toBe('published');

    const tag = await call('POST', '/tags', k, { name: `Key tag ${randomBytes(3).toString('hex')}` });
    expect(tag.statusCode, tag.body).toBe(201);
    const tagId = tag.json().data.id as string;
    expect((await call('PATCH', `/tags/${tagId}`, k, { description: 'From a key' })).statusCode).toBe(200);
    expect((await call('DELETE', `/tags/${tagId}`, k)).statusCode).toBe(204);

    expectError(await call('GET', `/tenants/${t.id}/members`, k), 403, 'insufficient_scope');
    expectError(await call('GET', '/audit-log', k), 403, 'insufficient_scope');
  });

  it('a members:read key reads members, not posts', async () => {
    const k = bearer((await mkKey(['members:read'])).key);
    const members = await call('GET', `/tenants/${t.id}/members`, k);
    expect(members.statusCode, members.body).toBe(200);
    expect((members.json().data as Array<{ userId: string }>).map((m) => m.userId)).toContain(viewer.id);
    expectError(await call('GET', '/posts', k), 403, 'insufficient_scope');
    expectError(await call('GET', '/tags', k), 403, 'insufficient_scope');
    expectError(
      await call('POST', `/tenants/${t.id}/members`, k, { email: 'x@example.com', role: 'viewer' }),
      403,
      'insufficient_scope',
    );
  });

  it('an admin key administers, but mints no keys and calls no account routes', async () => {
    const created = await mkKey(['admin']);
    const k = bearer(created.key);
    expect((await call('GET', '/audit-log', k)).statusCode).toBe(200);
    const ck = await call('POST', '/content-keys', k, { name: 'Site' });
    expect(ck.statusCode, ck.body).toBe(201);
    // The audit log names the key beside the member it acts for.
    const logged = await call('GET', '/audit-log?action=content_key.created&limit=100', t.as(t.owner));
    expect(logged.json().data).toContainEqual(
      expect.objectContaining({
        actorUserId: created.createdBy,
        target: expect.objectContaining({ id: ck.json().data.id }),
        details: expect.objectContaining({ viaApiKey: created.id }),
      }),
    );
    expect((await call('GET', `/tenants/${t.id}/members`, k)).statusCode).toBe(200);
    expect((await call('GET', `/tenants/${t.id}/usage`, k)).statusCode).toBe(200);

    // Admin API keys are managed by people only: a leaked key cannot mint more keys.
    const before = (await listKeys()).length;
    expectError(
      await call('POST', `/tenants/${t.id}/api-keys`, k, { name: 'x', scopes: ['admin'] }),
      403,
      'insufficient_scope',
    );
    expectError(await call('GET', `/tenants/${t.id}/api-keys`, k), 403, 'insufficient_scope');
    expect(await listKeys()).toHaveLength(before);
    // A person's own routes are not an organization's.
    expectError(await call('GET', '/auth/me', k), 403, 'api_key_not_allowed');
    expectError(await call('GET', '/tenants', k), 403, 'api_key_not_allowed');
    expectError(
      await call('POST', '/tenants', k, { name: 'Key corp', slug: `k-${randomBytes(3).toString('hex')}` }),
      403,
      'api_key_not_allowed',
    );
  });

  it('a key acts in its own tenant only, even when its creator belongs to another', async () => {
    const k = (await mkKey(['admin'])).key;
    // The creator reaches the other organization...
    expect((await call('GET', `/tenants/${other.id}/members`, t.owner.auth)).statusCode).toBe(200);
    // ...the key does not.
    for (const headers of [bearer(k), xApiKey(k)]) {
      expectError(await call('GET', '/posts', { ...headers, 'x-tenant-id': other.id }), 404, 'not_found');
      expectError(
        await call('POST', '/tags', { ...headers, 'x-tenant-id': other.id }, { name: 'Nope' }),
        404,
        'not_found',
      );
      expectError(await call('GET', `/tenants/${other.id}`, headers), 404, 'not_found');
      expectError(await call('GET', `/tenants/${other.id}/members`, headers), 404, 'not_found');
      expectError(await call('GET', '/audit-log', { ...headers, 'x-tenant-id': other.id }), 404, 'not_found');
      // Its own tenant, named or not, is fine.
      expect((await call('GET', '/posts', { ...headers, 'x-tenant-id': t.id })).statusCode).toBe(200);
      expect((await call('GET', `/tenants/${t.id}`, headers)).statusCode).toBe(200);
    }
  });

  it("never does more than its creator's current role; the creator's departure revokes it", async () => {
    const creator = await createMember(app, t, 'admin');
    const k = await mkKey(['admin'], { by: creator });
    const h = bearer(k.key);
    expect((await call('GET', '/audit-log', h)).statusCode).toBe(200);
    expect((await call('POST', '/posts', h, { title: 'While admin', body: 'x' })).statusCode).toBe(201);

    const demoted = await call('PATCH', `/tenants/${t.id}/members/${creator.id}`, t.owner.auth, { role: 'viewer' });
    expect(demoted.statusCode, demoted.body).toBe(204);
    expectError(await call('GET', '/audit-log', h), 403, 'forbidden');
    expectError(await call('POST', '/content-keys', h, { name: 'x' }), 403, 'forbidden');
    expectError(await call('POST', '/posts', h, { title: 'As viewer', body: 'x' }), 403, 'forbidden');
    expectError(await call('PUT', `/tenants/${t.id}/settings`, h, { title: 'Hijacked' }), 403, 'forbidden');
    // What a viewer may do, the key still may.
    expect((await call('GET', '/posts', h)).statusCode).toBe(200);

    const removed = await call('DELETE', `/tenants/${t.id}/members/${creator.id}`, t.owner.auth);
    expect(removed.statusCode, removed.body).toBe(204);
    expectError(await call('GET', '/posts', h), 401, 'invalid_api_key');
    expectError(await call('GET', '/posts', xApiKey(k.key)), 401, 'invalid_api_key');
    const row = await listed(k.id);
    expect(row?.revokedAt).toEqual(expect.any(String));
    const audit = await call('GET', '/audit-log?action=api_key.revoked&limit=100', t.as(t.owner));
    expect(audit.json().data).toContainEqual(
      expect.objectContaining({
        actorUserId: null,
        target: { type: 'api_key', id: k.id },
        details: expect.objectContaining({ reason: 'member_removed', userId: creator.id }),
      }),
    );
  });

  it('revoking stops a key at once; revoking it again is 404', async () => {
    const k = await mkKey(['content:read']);
    const spare = await mkKey(['content:read']);
    expect((await call('GET', '/posts', bearer(k.key))).statusCode).toBe(200); // now cached
    const res = await call('DELETE', `/tenants/${t.id}/api-keys/${k.id}`, admin.auth);
    expect(res.statusCode, res.body).toBe(204);
    expectError(await call('GET', '/posts', bearer(k.key)), 401, 'invalid_api_key');
    expectError(await call('GET', '/posts', xApiKey(k.key)), 401, 'invalid_api_key');
    expectError(await call('DELETE', `/tenants/${t.id}/api-keys/${k.id}`, admin.auth), 404, 'not_found');
    expect((await listed(k.id))?.revokedAt).toEqual(expect.any(String));
    // Other keys go on; an unknown id, or this key through another tenant, is 404.
    expect((await call('GET', '/posts', bearer(spare.key))).statusCode).toBe(200);
    expectError(
      await call('DELETE', `/tenants/${t.id}/api-keys/00000000-0000-4000-8000-000000000000`, admin.auth),
      404,
      'not_found',
    );
    expectError(await call('DELETE', `/tenants/${other.id}/api-keys/${spare.id}`, other.owner.auth), 404, 'not_found');
    expect((await call('GET', '/posts', bearer(spare.key))).statusCode).toBe(200);
  });

  it('an expired key stops working', async () => {
    const expiresAt = new Date(Date.now() + 2_500).toISOString();
    const k = await mkKey(['content:read'], { expiresAt });
    expect((await call('GET', '/posts', bearer(k.key))).statusCode).toBe(200); // resolved and cached
    await sleep(Math.max(0, Date.parse(expiresAt) - Date.now()) + 100);
    expectError(await call('GET', '/posts', bearer(k.key)), 401, 'invalid_api_key');
    expectError(await call('GET', '/posts', xApiKey(k.key)), 401, 'invalid_api_key');
  });

  it('records when a key was last used', async () => {
    const k = await mkKey(['content:read']);
    expect((await listed(k.id))?.lastUsedAt).toBeNull();
    const before = Date.now();
    expect((await call('GET', '/tags', xApiKey(k.key))).statusCode).toBe(200);
    const lastUsedAt = await eventually(async () => (await listed(k.id))?.lastUsedAt, 'lastUsedAt to be set');
    expect(Date.parse(lastUsedAt)).toBeGreaterThanOrEqual(before - 5_000);
  });

  it('limits each key to its own budget, not its tenant’s', async () => {
    const limited = await mkKey(['content:read'], { rateLimitPerMinute: 3 });
    // Same budget size, so the same counter: still counted per key.
    const spare = await mkKey(['content:read'], { rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) {
      const res = await call('GET', '/posts', bearer(limited.key));
      expect(res.statusCode, `request ${i + 1}: ${res.body}`).toBe(200);
    }
    const res = await call('GET', '/posts', xApiKey(limited.key));
    expectError(res, 429, 'api_key_rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    // Another key of the tenant, and its people, go on.
    expect((await call('GET', '/posts', bearer(spare.key))).statusCode).toBe(200);
    expect((await call('GET', '/posts', t.as(t.owner))).statusCode).toBe(200);
  });

  it('puts api_key.created and api_key.revoked in the audit log with the actor, and never the key', async () => {
    const k = await mkKey(['members:read'], { by: admin, name: 'Audited' });
    expect((await call('DELETE', `/tenants/${t.id}/api-keys/${k.id}`, t.owner.auth)).statusCode).toBe(204);
    const log = async (action: string) => {
      const res = await call('GET', `/audit-log?action=${action}&limit=100`, t.as(t.owner));
      expect(res.statusCode, res.body).toBe(200);
      return res.json().data as Array<{
        action: string;
        actorUserId: string | null;
        target: unknown;
        details: unknown;
      }>;
    };
    const created = await log('api_key.created');
    expect(created.every((e) => e.action === 'api_key.created')).toBe(true);
    expect(created).toContainEqual(
      expect.objectContaining({
        actorUserId: admin.id,
        target: { type: 'api_key', id: k.id },
        details: expect.objectContaining({ name: 'Audited', prefix: k.prefix, scopes: ['members:read'] }),
      }),
    );
    const revoked = await log('api_key.revoked');
    expect(revoked.every((e) => e.action === 'api_key.revoked')).toBe(true);
    expect(revoked).toContainEqual(
      expect.objectContaining({ actorUserId: t.owner.id, target: { type: 'api_key', id: k.id } }),
    );
    expect(JSON.stringify([...created, ...revoked])).not.toContain(k.key);
    // The other organization's log has none of it.
    const theirs = await call('GET', '/audit-log?action=api_key.created&limit=100', other.as(other.owner));
    expect(JSON.stringify(theirs.json().data)).not.toContain(k.id);
  });
});
