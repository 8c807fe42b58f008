import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';

// Browsers read public content from any site (Ghost clients send Accept-Version, which needs a
// preflight); the staff API stays closed to origins not in CORS_ORIGINS.
describe('CORS on public content and on the staff API', () => {
  const kind = databaseKinds[0]!;
  let tdb: TestDatabase;
  let app: FastifyInstance;

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app } = await createTestStack(tdb.db, { BASE_HOST: 'blog.test' }));
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const preflight = (url: string, host = 'localhost') =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: {
        host,
        origin: 'https://reader.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'accept-version',
      },
    });

  it.each([
    ['/ghost/api/content/posts/'],
    ['/ghost/api/v4/content/posts/'],
    ['/s/acme/ghost/api/content/posts/'],
    ['/s/acme/rss/'],
  ])('preflight of %s allows any origin and Accept-Version, without credentials', async (url) => {
    const res = await preflight(url);
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(String(res.headers['access-control-allow-headers'])).toContain('accept-version');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('feeds on a tenant host are public to browsers too', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/feed.json',
      headers: { host: 'nobody.blog.test', origin: 'https://reader.example' },
    });
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('the staff API allows no foreign origin when CORS_ORIGINS is empty', async () => {
    const res = await preflight('/api/v1/posts');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const get = await app.inject({
      method: 'GET',
      url: '/api/v1/posts',
      headers: { origin: 'https://reader.example' },
    });
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });
});
