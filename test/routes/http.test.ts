import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { createContainer } from '../../src/composition.js';
import { createTestApp, testConfig } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createUser, PASSWORD } from '../helpers/factories.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** "METHOD /path/{}" for every route in Fastify's printed tree (parameters normalized, HEAD left out). */
function routesOf(app: FastifyInstance): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.+?)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    stack.length = m[1]!.length / 4;
    stack.push(m[2]!);
    for (const method of (m[3] ?? '').split(', ')) {
      if (method && method !== 'HEAD' && method !== 'OPTIONS')
        out.add(`${method} ${stack.join('').replace(/:[^/]+/g, '{}')}`);
    }
  }
  return out;
}

describe.each(databaseKinds)('HTTP surface on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  /** A second app on the same database with other settings, closed after `fn`. */
  async function withApp(env: Record<string, string>, fn: (other: FastifyInstance) => Promise<void>) {
    const other = await createTestApp(tdb.db, env);
    try {
      await fn(other);
    } finally {
      await other.close();
    }
  }

  it('answers an unknown route with 404 route_not_found in the error shape', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['GET', '/api/v1/nope?x=1'],
      ['POST', '/api/v1/tenants/not/a/route'],
      ['DELETE', '/api/v1/posts'],
    ] as const) {
      const err = expectError(await app.inject({ method, url }), 404, 'route_not_found');
      expect(err.message).toBe(`Route ${method} ${url.split('?')[0]} not found`);
    }
  });

  it('echoes a well-formed x-request-id and replaces a malformed one', async () => {
    const given = 'client-trace.42:abc_DEF';
    const ok = await app.inject({ url: '/api/v1/auth/me', headers: { 'x-request-id': given } });
    expect(ok.headers['x-request-id']).toBe(given);
    expect(expectError(ok, 401).requestId).toBe(given);
    for (const bad of ['has spaces in it', 'a'.repeat(500), 'semi;colon', '']) {
      const res = await app.inject({ url: '/health/live', headers: { 'x-request-id': bad } });
      expect(res.headers['x-request-id']).toMatch(UUID);
    }
    const none = await app.inject({ url: '/health/live' });
    expect(none.headers['x-request-id']).toMatch(UUID);
  });

  it('sends the helmet security headers on success, error and not-found responses', async () => {
    for (const url of ['/health/live', '/api/v1/auth/me', '/api/v1/nowhere']) {
      const h = (await app.inject({ url })).headers;
      expect(h['x-content-type-options']).toBe('nosniff');
      expect(h['x-frame-options']).toBe('SAMEORIGIN');
      expect(h['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(h['content-security-policy']).toContain("default-src 'self'");
      expect(h['referrer-policy']).toBe('no-referrer');
      expect(h['x-powered-by']).toBeUndefined();
    }
  });

  describe('CORS', () => {
    const preflight = (target: FastifyInstance, origin: string, method: string) =>
      target.inject({
        method: 'OPTIONS',
        url: '/api/v1/posts/00000000-0000-4000-8000-000000000000',
        headers: {
          origin,
          'access-control-request-method': method,
          'access-control-request-headers': 'authorization,content-type,x-tenant-id,if-match',
        },
      });

    it('lets a configured origin call every method the API uses', async () => {
      await withApp({ CORS_ORIGINS: 'https://app.example.com' }, async (cors) => {
        for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
          const res = await preflight(cors, 'https://app.example.com', method);
          expect(res.statusCode).toBe(204);
          expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
          expect(res.headers['access-control-allow-credentials']).toBe('true');
          expect(String(res.headers['access-control-allow-methods']).split(/,\s*/)).toContain(method);
        }
        const simple = await cors.inject({ url: '/health/live', headers: { origin: 'https://app.example.com' } });
        expect(simple.headers['access-control-allow-origin']).toBe('https://app.example.com');
        expect(simple.headers['access-control-expose-headers']).toContain('x-request-id');
      });
    });

    it('does not allow any other origin, nor any origin when none is configured', async () => {
      await withApp({ CORS_ORIGINS: 'https://app.example.com' }, async (cors) => {
        for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.io', 'null']) {
          const res = await preflight(cors, origin, 'PATCH');
          expect(res.headers['access-control-allow-origin']).toBeUndefined();
        }
      });
      const res = await preflight(app, 'https://app.example.com', 'GET');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe('API documents', () => {
    it('/openapi.json is OpenAPI 3.1 listing every /api/v1 route with its error responses', async () => {
      const res = await app.inject({ url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json();
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.info).toMatchObject({ title: 'Quire API', version: expect.any(String) });
      expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message', 'requestId']);

      type Op = { responses: Record<string, { content?: Record<string, { schema: unknown }> }>; security?: unknown[] };
      const ops: Array<[string, Op]> = Object.entries(doc.paths as Record<string, Record<string, Op>>)
        .filter(([path]) => path.startsWith('/api/v1/'))
        .flatMap(([path, byMethod]) =>
          Object.entries(byMethod).map(
            ([m, op]) => [`${m.toUpperCase()} ${path.replace(/\{[^}]+\}/g, '{}')}`, op] as [string, Op],
          ),
        );
      const served = [...routesOf(app)].filter((r) => r.split(' ')[1]!.startsWith('/api/v1/'));
      expect(served.length).toBeGreaterThanOrEqual(19);
      expect(ops.map(([k]) => k).sort()).toEqual(served.sort());

      for (const [key, op] of ops) {
        const errorCodes = Object.keys(op.responses).filter((c) => Number(c) >= 400);
        expect(errorCodes.length, key).toBeGreaterThan(0);
        if (op.security) expect(errorCodes, key).toContain('401');
        for (const c of errorCodes) {
          expect(op.responses[c]!.content?.['application/json']?.schema, `${key} ${c}`).toEqual({
            $ref: '#/components/schemas/Error',
          });
        }
      }
    });

    it('/docs serves the HTML explorer', async () => {
      const res = await app.inject({ url: '/docs' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toMatch(/<!DOCTYPE html>/i);
    });
  });

  it('rate-limits the credential endpoints: 429 in the error shape, with retry-after', async () => {
    await withApp({ AUTH_RATE_LIMIT_MAX: '3' }, async (limited) => {
      const u = await createUser(limited);
      const login = () =>
        limited.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: u.email, password: PASSWORD } });
      // createUser already signed in once: two more fit the window of three.
      for (let i = 0; i < 2; i++) expect((await login()).statusCode).toBe(200);
      const res = await login();
      expectError(res, 429, 'rate_limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(res.headers['ratelimit-limit']).toBe('3');
      // The stricter limit is for credentials only: the rest of the API still answers.
      expect((await limited.inject({ url: '/api/v1/auth/me', headers: u.auth })).statusCode).toBe(200);
    });
  });

  it('turns an unexpected error into a generic 500, with no message or stack of its own', async () => {
    const config = testConfig();
    const container = await createContainer(config, { db: tdb.db });
    const boom = await buildApp({ config, container, logger: false });
    const open = { config: { access: 'public' as const } };
    boom.get('/api/v1/boom', open, async () => {
      throw new Error('secret internal detail at /srv/app/db.ts:42');
    });
    boom.get('/api/v1/boom-async', open, () =>
      Promise.reject(Object.assign(new Error('pg said: password=hunter2'), { code: 'XX000' })),
    );
    await boom.ready();
    try {
      for (const url of ['/api/v1/boom', '/api/v1/boom-async']) {
        const res = await boom.inject({ url, headers: { 'x-request-id': 'trace-500' } });
        const err = expectError(res, 500, 'internal_error');
        expect(err).toEqual({
          code: 'internal_error',
          message: 'Something went wrong on our side',
          requestId: 'trace-500',
        });
        expect(res.body).not.toMatch(/secret|hunter2|XX000/);
      }
    } finally {
      await boom.close();
    }
  });
});
