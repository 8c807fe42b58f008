import { createSigner } from 'fast-jwt';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, TEST_JWT_SECRET } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createPost, createTenant, createUser, PASSWORD, type TestUser } from '../helpers/factories.js';

describe.each(databaseKinds)('tenant resolution and token checks on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db, { BASE_HOST: 'quire.test' });
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const listAs = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/api/v1/posts', headers });
  const titles = (res: { json(): { data: Array<{ title: string }> } }) => res.json().data.map((p) => p.title);

  it('takes the tenant from the subdomain of BASE_HOST', async () => {
    const t = await createTenant(app);
    await createPost(app, t, t.owner, { title: 'Via subdomain' });
    const res = await listAs({ ...t.owner.auth, host: `${t.slug}.quire.test` });
    expect(res.statusCode).toBe(200);
    expect(titles(res)).toEqual(['Via subdomain']);
    const unknown = await listAs({ ...t.owner.auth, host: 'no-such-tenant.quire.test' });
    expect(unknown.statusCode).toBe(404);
  });

  it('lets X-Tenant-ID win over the subdomain, and still requires membership', async () => {
    const a = await createTenant(app);
    const b = await createTenant(app);
    await createPost(app, a, a.owner, { title: 'In A' });
    const res = await listAs({ ...a.owner.auth, host: `${b.slug}.quire.test`, 'x-tenant-id': a.id });
    expect(titles(res)).toEqual(['In A']);
    const notMine = await listAs({ ...a.owner.auth, host: `${a.slug}.quire.test`, 'x-tenant-id': b.id });
    expect(notMine.statusCode).toBe(404);
  });

  it('falls back to the tid claim of a tenant-bound session', async () => {
    const t = await createTenant(app);
    await createPost(app, t, t.owner, { title: 'Via claim' });
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: t.owner.email, password: PASSWORD, tenantId: t.id },
    });
    const token = login.json().data.accessToken as string;
    expect(titles(await listAs({ authorization: `Bearer ${token}` }))).toEqual(['Via claim']);
    // The claim survives a refresh.
    const refreshed = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken: login.json().data.refreshToken },
    });
    const next = refreshed.json().data.accessToken as string;
    expect(titles(await listAs({ authorization: `Bearer ${next}` }))).toEqual(['Via claim']);
  });

  it('asks for a tenant when none is given', async () => {
    const u = await createUser(app);
    const res = await listAs(u.auth);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('tenant_required');
  });

  describe('access tokens', () => {
    let user: TestUser;
    let tenantId: string;
    beforeAll(async () => {
      const t = await createTenant(app);
      user = t.owner;
      tenantId = t.id;
    });
    const base = { iss: 'quire', aud: 'quire-api' };
    const forged: Array<[string, () => string]> = [
      ['alg none', () => createSigner({ algorithm: 'none' })({ sub: user.id, ...base })],
      ['another key', () => createSigner({ key: 'x'.repeat(48), ...base })({ sub: user.id })],
      [
        'HS512 with the right key',
        () => createSigner({ key: TEST_JWT_SECRET, algorithm: 'HS512', ...base })({ sub: user.id }),
      ],
      [
        'expired',
        () =>
          createSigner({ key: TEST_JWT_SECRET, ...base, expiresIn: 1000, clockTimestamp: Date.now() - 60_000 })({
            sub: user.id,
          }),
      ],
      ['wrong audience', () => createSigner({ key: TEST_JWT_SECRET, iss: 'quire', aud: 'other' })({ sub: user.id })],
      ['wrong issuer', () => createSigner({ key: TEST_JWT_SECRET, iss: 'evil', aud: 'quire-api' })({ sub: user.id })],
      ['no expiry', () => createSigner({ key: TEST_JWT_SECRET, ...base })({ sub: user.id })],
      [
        'tampered payload',
        () => {
          const [h, , s] = user.accessToken.split('.');
          const body = Buffer.from(JSON.stringify({ sub: '00000000-0000-4000-8000-000000000000', ...base })).toString(
            'base64url',
          );
          return `${h}.${body}.${s}`;
        },
      ],
    ];
    it.each(forged)('rejects a token signed with %s', async (_name, make) => {
      const res = await listAs({ authorization: `Bearer ${make()}`, 'x-tenant-id': tenantId });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('invalid_token');
    });

    it('accepts the real one (control)', async () => {
      const res = await listAs({ ...user.auth, 'x-tenant-id': tenantId });
      expect(res.statusCode).toBe(200);
    });
  });
});
