import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createTenant } from '../helpers/factories.js';

// One budget per tenant on the tenant-scoped API, across all its callers: a tenant over its
// budget is slowed, another tenant is not.
describe('per-tenant rate limit', () => {
  const kind = databaseKinds[0]!;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db, { RATE_LIMIT_TENANT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  it('counts every member of a tenant together and answers 429 with Retry-After past the budget', async () => {
    const busy = await createTenant(app);
    const editor = await createMember(app, busy, 'editor');
    const quiet = await createTenant(app);
    const list = (t: typeof busy, u = t.owner) => app.inject({ method: 'GET', url: '/api/v1/tags', headers: t.as(u) });
    expect((await list(busy)).statusCode).toBe(200);
    expect((await list(busy, editor)).statusCode).toBe(200);
    expect((await list(busy)).statusCode).toBe(200);
    const over = await list(busy, editor);
    expectError(over, 429, 'tenant_rate_limited');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // Another tenant keeps its own budget.
    expect((await list(quiet)).statusCode).toBe(200);
  });

  it('a stranger naming a tenant gets 404 and spends none of its budget', async () => {
    const target = await createTenant(app);
    const stranger = await createTenant(app);
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/tags',
        headers: { ...stranger.owner.auth, 'x-tenant-id': target.id },
      });
      expectError(res, 404, 'not_found');
    }
    const own = await app.inject({ method: 'GET', url: '/api/v1/tags', headers: target.as(target.owner) });
    expect(own.statusCode).toBe(200);
  });
});
