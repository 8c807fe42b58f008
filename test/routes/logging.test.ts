import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { createContainer } from '../../src/composition.js';
import { testConfig } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { PASSWORD } from '../helpers/factories.js';

describe.each(databaseKinds)('request logs on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  const lines: string[] = [];
  beforeAll(async () => {
    tdb = await kind.create();
    const config = testConfig({ LOG_LEVEL: 'info' });
    const container = await createContainer(config, { db: tdb.db });
    const logStream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    app = await buildApp({ config, container, logStream });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  it('are JSON with the request id, and never carry passwords or tokens', async () => {
    const email = 'logged@example.com';
    await app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email, password: PASSWORD, name: 'L' },
    });
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email, password: PASSWORD },
    });
    const { accessToken, refreshToken } = login.json().data;
    await app.inject({
      method: 'GET',
      url: '/api/v1/auth/me',
      headers: {
        authorization: `Bearer ${accessToken}`,
        cookie: 'session=secret-cookie',
        'x-request-id': 'trace-me-1',
      },
    });
    await app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });

    expect(lines.length).toBeGreaterThan(4);
    const entries = lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string });
    expect(entries.filter((e) => e.msg === 'request completed').every((e) => typeof e.reqId === 'string')).toBe(true);
    expect(entries.some((e) => e.reqId === 'trace-me-1')).toBe(true);
    const all = lines.join('\n');
    for (const secret of [PASSWORD, accessToken, refreshToken, 'secret-cookie']) {
      expect(all).not.toContain(secret);
    }
  });
});
