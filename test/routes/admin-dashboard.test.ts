import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { queueNames } from '../../src/modules/jobs/queues.js';
import { createTestStack } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createUser, type TestUser } from '../helpers/factories.js';
import { type ModeEnv, modeEnv, NO_SHEDDING, type QueueMode, queueModes } from '../helpers/jobs.js';

const bullmq = queueModes.find((m) => m.backend === 'bullmq') as QueueMode;

/** Bull Board at /admin/queues: BullMQ mode only, platform admins only (bearer token on every request). */
describe(`queue dashboard, ${bullmq.name}`, () => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    menv = await modeEnv(bullmq, 'dashboard');
    tdb = await bullmq.kind.create();
    // The order main.ts uses: the app is built, then the workers start.
    ({ app, container } = await createTestStack(tdb.db, menv.env));
    await container.startWorkers();
    admin = await createUser(app);
    await container.services.auth.setPlatformAdmin(admin.email, true);
    user = await createUser(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
  });

  const open = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });

  it('answers 401 without a token or with a bad one, 403 to anyone but a platform admin', async () => {
    for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
      expectError(await open(url), 401, 'unauthorized');
      expectError(await open(url, { authorization: 'Bearer not-a-token' }), 401, 'invalid_token');
      expectError(await open(url, user.auth), 403, 'forbidden');
    }
  });

  it('serves the dashboard to a platform admin', async () => {
    const page = await open('/admin/queues', admin.auth);
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('Quire jobs');
  });

  it("lists every queue in the dashboard's own API", async () => {
    const res = await open('/admin/queues/api/queues', admin.auth);
    expect(res.statusCode, res.body).toBe(200);
    const names = (res.json().queues as Array<{ name: string }>).map((q) => q.name).sort();
    expect(names).toEqual([...queueNames].sort());
  });

  it('is closed again as soon as platform admin rights are revoked', async () => {
    const other = await createUser(app);
    await container.services.auth.setPlatformAdmin(other.email, true);
    expect((await open('/admin/queues', other.auth)).statusCode).toBe(200);
    await container.services.auth.setPlatformAdmin(other.email, false);
    expectError(await open('/admin/queues', other.auth), 403, 'forbidden');
  });
});

describe.each(queueModes.filter((m) => m.backend === 'pg-boss'))('queue dashboard, $name', (mode) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  beforeAll(async () => {
    tdb = await mode.kind.create();
    ({ app, container } = await createTestStack(tdb.db, NO_SHEDDING));
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  it('does not exist without BullMQ: /admin/queues is 404, even for a platform admin', async () => {
    const admin = await createUser(app);
    expect(await container.services.auth.setPlatformAdmin(admin.email, true)).toBe(true);
    const res = await app.inject({ method: 'GET', url: '/admin/queues', headers: admin.auth });
    expectError(res, 404, 'route_not_found');
    expectError(await app.inject({ method: 'GET', url: '/admin/queues/api/queues' }), 404, 'route_not_found');
  });
});
