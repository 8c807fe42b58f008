import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

describe.each(databaseKinds)('content API keys on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let t: TestTenant;
  let admin: TestUser;
  let editor: TestUser;
  let other: TestTenant;

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app, container } = await createTestStack(tdb.db));
    t = await createTenant(app);
    admin = await createMember(app, t, 'admin');
    editor = await createMember(app, t, 'editor');
    other = await createTenant(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, tenant: TestTenant, user: TestUser, payload?: object) =>
    app.inject({ method, url: `/api/v1${url}`, headers: tenant.as(user), ...(payload && { payload }) });

  it('creates a 26-hex key shown once, stores only its hash, and resolves it to the tenant', async () => {
    const res = await call('POST', '/content-keys', t, admin, { name: 'Website' });
    expect(res.statusCode, res.body).toBe(201);
    const created = res.json().data;
    expect(created.key).toMatch(/^[0-9a-f]{26}$/);
    expect(created).toMatchObject({ name: 'Website', keyHint: `…${created.key.slice(-4)}`, lastUsedAt: null });

    const listed = (await call('GET', '/content-keys', t, t.owner)).json().data;
    expect(listed).toEqual([
      { id: created.id, name: 'Website', keyHint: created.keyHint, createdAt: created.createdAt, lastUsedAt: null },
    ]);
    expect(JSON.stringify(listed)).not.toContain(created.key);
    const { rows } = await tdb.db.query('SELECT key_hash FROM content_keys WHERE id = $1', [created.id]);
    expect(rows[0]?.key_hash).not.toContain(created.key);

    expect(await container.services.contentKeys.resolve(created.key)).toBe(t.id);
    // A body is optional: the key gets a default name.
    const unnamed = await call('POST', '/content-keys', t, t.owner);
    expect(unnamed.statusCode, unnamed.body).toBe(201);
    expect(unnamed.json().data.name).toBe('Content API');
    expect(unnamed.json().data.key).not.toBe(created.key);
  });

  it('resolves nothing for a malformed, unknown or revoked key; revoking is at once', async () => {
    const { resolve } = container.services.contentKeys;
    expect(await resolve('not-a-key')).toBeNull();
    expect(await resolve('ABCDEF0123456789ABCDEF0123')).toBeNull();
    expect(await resolve('0123456789abcdef0123456789')).toBeNull();

    const created = (await call('POST', '/content-keys', t, t.owner, { name: 'Old' })).json().data;
    expect(await resolve(created.key)).toBe(t.id); // now cached
    expect((await call('DELETE', `/content-keys/${created.id}`, t, t.owner)).statusCode).toBe(204);
    expect(await resolve(created.key)).toBeNull();
    expectError(await call('DELETE', `/content-keys/${created.id}`, t, t.owner), 404, 'not_found');
  });

  it('only owners and admins manage keys; another tenant’s key is a 404', async () => {
    expectError(await call('POST', '/content-keys', t, editor, { name: 'x' }), 403, 'forbidden');
    expectError(await call('GET', '/content-keys', t, editor), 403, 'forbidden');
    const theirs = (await call('POST', '/content-keys', other, other.owner, { name: 'Theirs' })).json().data;
    expectError(await call('DELETE', `/content-keys/${theirs.id}`, t, t.owner), 404, 'not_found');
    const mine = (await call('GET', '/content-keys', t, t.owner)).json().data.map((k: { id: string }) => k.id);
    expect(mine).not.toContain(theirs.id);
    // Their key reads their tenant, not ours.
    expect(await container.services.contentKeys.resolve(theirs.key)).toBe(other.id);
    expectError(await call('POST', '/content-keys', t, t.owner, { name: '' }), 400, 'validation_failed');
  });
});
