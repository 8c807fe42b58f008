import { createHmac, generateKeyPairSync, sign as signRaw } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStack, TEST_JWT_SECRET } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createUser, PASSWORD } from '../helpers/factories.js';

// Signing keys: a `kid` on every token, asymmetric keys with a JWKS, rotation without signing
// anyone out, and no token whose key or algorithm is not ours. Independent of the database kind.
const pem = (type: 'ed25519' | 'ec') => {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
};
const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
const parts = (token: string) => {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()),
  };
};

describe('access token keys', () => {
  const kind = databaseKinds[0]!;
  let tdb: TestDatabase;
  const apps: FastifyInstance[] = [];
  const k1 = pem('ed25519');
  const k2 = pem('ec');

  beforeAll(async () => {
    tdb = await kind.create();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await tdb?.drop();
  });

  const stack = async (env: Record<string, string>) => {
    const { app } = await createTestStack(tdb.db, env);
    apps.push(app);
    return app;
  };
  const me = (app: FastifyInstance, token: string) =>
    app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
  const login = async (app: FastifyInstance, email: string) =>
    (await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } })).json()
      .data.accessToken as string;

  it('a shared-secret token carries a kid and HS256; its JWKS is empty', async () => {
    const app = await stack({});
    const u = await createUser(app);
    const { header } = parts(u.accessToken);
    expect(header).toMatchObject({ alg: 'HS256', typ: 'JWT' });
    expect(header.kid).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()).toEqual({ keys: [] });
  });

  it('signs with a private key (EdDSA), publishes its public half, and rotates without signing anyone out', async () => {
    const a = await stack({ JWT_PRIVATE_KEY: k1.privateKey.replace(/\n/g, '\\n'), JWT_KEY_ID: 'k1' });
    const u = await createUser(a);
    const token = await login(a, u.email);
    expect(parts(token).header).toMatchObject({ alg: 'EdDSA', kid: 'k1' });
    expect((await me(a, token)).statusCode).toBe(200);
    const jwks = (await a.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    expect(jwks.keys).toEqual([
      expect.objectContaining({ kid: 'k1', alg: 'EdDSA', kty: 'OKP', crv: 'Ed25519', use: 'sig' }),
    ]);
    expect(JSON.stringify(jwks)).not.toContain('"d"');

    // The next key signs; the old one still verifies until its tokens expire.
    const b = await stack({
      JWT_PRIVATE_KEY: k2.privateKey,
      JWT_KEY_ID: 'k2',
      JWT_PREVIOUS_KEYS: JSON.stringify({ k1: k1.publicKey }),
    });
    expect((await me(b, token)).statusCode).toBe(200);
    const fresh = await login(b, u.email);
    expect(parts(fresh).header).toMatchObject({ alg: 'ES256', kid: 'k2' });
    expect(
      (await b.inject({ method: 'GET', url: '/api/v1/auth/jwks.json' }))
        .json()
        .keys.map((k: { kid: string }) => k.kid)
        .sort(),
    ).toEqual(['k1', 'k2']);
    // Once k1 is dropped, its tokens stop working.
    const c = await stack({ JWT_PRIVATE_KEY: k2.privateKey, JWT_KEY_ID: 'k2' });
    expect((await me(c, fresh)).statusCode).toBe(200);
    expect((await me(c, token)).statusCode).toBe(401);
  });

  it('refuses an unknown kid, alg none, a mismatched algorithm and HS256 signed with the public key', async () => {
    const app = await stack({ JWT_PRIVATE_KEY: k1.privateKey, JWT_KEY_ID: 'k1' });
    const u = await createUser(app);
    const good = await login(app, u.email);
    const { payload } = parts(good);
    const [, body, sig] = good.split('.');
    const attempts = {
      unknownKid: `${b64({ alg: 'EdDSA', typ: 'JWT', kid: 'nope' })}.${body}.${sig}`,
      algNone: `${b64({ alg: 'none', typ: 'JWT', kid: 'k1' })}.${body}.`,
      // Algorithm confusion: HS256 with the public key as the HMAC secret.
      hsWithPublicKey: (() => {
        const head = b64({ alg: 'HS256', typ: 'JWT', kid: 'k1' });
        const mac = createHmac('sha256', k1.publicKey).update(`${head}.${body}`).digest('base64url');
        return `${head}.${body}.${mac}`;
      })(),
      // Signed by another Ed25519 key under our kid.
      otherKey: (() => {
        const other = pem('ed25519');
        const head = b64({ alg: 'EdDSA', typ: 'JWT', kid: 'k1' });
        const s = signRaw(null, Buffer.from(`${head}.${body}`), other.privateKey).toString('base64url');
        return `${head}.${body}.${s}`;
      })(),
      tampered: `${good.split('.')[0]}.${b64({ ...payload, sub: '00000000-0000-4000-8000-000000000000' })}.${sig}`,
      // The test suite's shared secret: a valid HS256 token, but not a key this app accepts.
      sharedSecret: (() => {
        const head = b64({ alg: 'HS256', typ: 'JWT' });
        const mac = createHmac('sha256', TEST_JWT_SECRET).update(`${head}.${body}`).digest('base64url');
        return `${head}.${body}.${mac}`;
      })(),
    };
    expect((await me(app, good)).statusCode).toBe(200);
    for (const [name, token] of Object.entries(attempts)) {
      const res = await me(app, token);
      expect(`${name} → ${res.statusCode}`).toBe(`${name} → 401`);
      expect(res.json().error.code).toBe('invalid_token');
    }
  });
});
