import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStack, TEST_JWT_SECRET, type TestStack } from '../helpers/app.js';
import { runTsFile } from '../helpers/child.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createTenant, createUser, PASSWORD, type TestTenant, type TestUser } from '../helpers/factories.js';
import { type OidcTestProvider, startOidcProvider } from '../helpers/oidc-provider.js';
import { type Authenticator, enableTotp, nextCode } from '../helpers/totp.js';

/**
 * Rotating SECRETS_KEY, the key that seals TOTP secrets and identity-provider client secrets at
 * rest: with the old key in SECRETS_PREVIOUS_KEYS everything still opens; `secrets:reseal`
 * rewrites it under the new key; then the old key can go. Over the real HTTP API, against a real
 * OIDC provider (the organization's issuer is checked by discovery with its opened secret), and
 * with the real script in a child process.
 */

const CLIENT = { clientId: 'quire-rotation', clientSecret: 'rotation-client-secret-0123456789' };
const newKey = () => randomBytes(32).toString('hex');

interface Enrolled {
  user: TestUser;
  tenant: TestTenant;
  a: Authenticator;
}

describe.each(databaseKinds)('secrets key rotation on $name', (kind) => {
  let tdb: TestDatabase;
  let op: OidcTestProvider;
  const [keyA, keyB] = [newKey(), newKey()];

  beforeAll(async () => {
    [tdb, op] = await Promise.all([
      kind.create(),
      startOidcProvider({ clients: [{ ...CLIENT, redirectUris: ['http://quire.test/api/v1/auth/oidc/callback'] }] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([tdb?.drop(), op?.close()]);
  });

  const stack = (env: Record<string, string>) =>
    createTestStack(tdb.db, { OIDC_ALLOW_INSECURE: 'true', PUBLIC_URL: 'http://quire.test', ...env });
  async function withStack<T>(env: Record<string, string>, run: (s: TestStack) => Promise<T>): Promise<T> {
    const s = await stack(env);
    try {
      return await run(s);
    } finally {
      await s.app.close();
    }
  }

  /** A user with TOTP on and an organization with its own identity provider, under `key`. */
  async function enrolUnder(app: FastifyInstance): Promise<Enrolled> {
    const user = await createUser(app);
    const tenant = await createTenant(app, user);
    const a = await enableTotp(app, user);
    const sso = await app.inject({
      method: 'PUT',
      url: `/api/v1/tenants/${tenant.id}/sso`,
      headers: tenant.as(user),
      payload: { issuer: op.issuer, ...CLIENT },
    });
    expect(sso.statusCode, sso.body).toBe(200);
    return { user, tenant, a };
  }

  /** Signs in with the password and a fresh TOTP code: the TOTP secret opened. */
  async function signInWithTotp(app: FastifyInstance, e: Enrolled) {
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: e.user.email, password: PASSWORD },
    });
    expect(login.statusCode, login.body).toBe(200);
    const { mfaToken } = login.json().data;
    const verified = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/verify',
      payload: { mfaToken, code: await nextCode(e.a) },
    });
    expect(verified.statusCode, verified.body).toBe(200);
    return verified.json().data as { accessToken: string };
  }

  /** Saves the organization's configuration without re-entering the secret: the stored one is opened and used for discovery. */
  async function resaveSso(app: FastifyInstance, e: Enrolled, accessToken: string) {
    const res = await app.inject({
      method: 'PUT',
      url: `/api/v1/tenants/${e.tenant.id}/sso`,
      headers: { authorization: `Bearer ${accessToken}`, 'x-tenant-id': e.tenant.id },
      payload: { issuer: op.issuer, clientId: CLIENT.clientId },
    });
    expect(res.statusCode, res.body).toBe(200);
  }

  const sealed = async (e: Enrolled) => {
    const { rows } = await tdb.db.query(
      `select u.totp_secret as totp, s.client_secret as client
         from users u, tenant_sso s where u.id = $1 and s.tenant_id = $2`,
      [e.user.id, e.tenant.id],
    );
    return rows[0] as { totp: string; client: string };
  };

  let e: Enrolled;

  it('with the old key in SECRETS_PREVIOUS_KEYS, secrets sealed under it still open; reseal moves them to the new key', async () => {
    e = await withStack({ SECRETS_KEY: keyA }, (s) => enrolUnder(s.app));
    const underA = await sealed(e);
    expect(underA.totp).toMatch(/^v2\./);
    expect(underA.client).toMatch(/^v2\./);
    expect(JSON.stringify(underA)).not.toContain(CLIENT.clientSecret);

    await withStack({ SECRETS_KEY: keyB, SECRETS_PREVIOUS_KEYS: keyA }, async (s) => {
      await signInWithTotp(s.app, e);
      expect(await s.container.services.mfa.reseal()).toEqual({ resealed: 1, unreadable: 0 });
      expect(await s.container.services.sso.reseal()).toEqual({ resealed: 1, unreadable: 0 });
      // Nothing left: a second run rewrites nothing.
      expect(await s.container.services.mfa.reseal()).toEqual({ resealed: 0, unreadable: 0 });
      expect(await s.container.services.sso.reseal()).toEqual({ resealed: 0, unreadable: 0 });
    });
    const underB = await sealed(e);
    expect(underB.totp).not.toBe(underA.totp);
    expect(underB.client).not.toBe(underA.client);
    expect(underB.totp.split('.')[1]).not.toBe(underA.totp.split('.')[1]);

    // The old key is gone: everything opens with the new one alone.
    await withStack({ SECRETS_KEY: keyB }, async (s) => {
      const session = await signInWithTotp(s.app, e);
      await resaveSso(s.app, e, session.accessToken);
    });
  });

  if (kind.name === 'pglite') {
    // Listed as skipped, not silent: a child process cannot open this process's in-memory PGlite.
    it.skip('npm run secrets:reseal (the real script): runs against PostgreSQL', () => {});
    return;
  }

  it('npm run secrets:reseal (the real script): reports what it rewrote, and fails on what no key opens', async () => {
    // Another user enrols under the old key A while the rest is under B.
    const late = await withStack({ SECRETS_KEY: keyA }, (s) => enrolUnder(s.app));
    const env = { DATABASE_URL: tdb.url!, NODE_ENV: 'test', JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent' };

    const ok = await runReseal({ ...env, SECRETS_KEY: keyB, SECRETS_PREVIOUS_KEYS: `${newKey()}, ${keyA}` });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('resealed: 1 TOTP secrets, 1 identity-provider client secrets');
    expect(ok.stdout).toContain('SECRETS_PREVIOUS_KEYS can go');
    await withStack({ SECRETS_KEY: keyB }, (s) => signInWithTotp(s.app, late));

    // A key nobody kept: the script says so and fails, and changes nothing.
    const before = await sealed(late);
    const lost = await runReseal({ ...env, SECRETS_KEY: newKey() });
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(/unreadable: \d+ TOTP secrets, \d+ client secrets/);
    expect(await sealed(late)).toEqual(before);
  });
});

const runReseal = (env: Record<string, string>) => runTsFile('src/cli/reseal-secrets.ts', env);
