import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createUser } from '../helpers/factories.js';
import { type ModeEnv, modeEnv, NO_SHEDDING, type QueueMode, queueModes, waitFor } from '../helpers/jobs.js';

const bullmq = queueModes.find((m) => m.backend === 'bullmq') as QueueMode;
const pglite = databaseKinds[0] as (typeof databaseKinds)[number];

const ready = (app: FastifyInstance) => app.inject({ method: 'GET', url: '/health/ready' });
const live = (app: FastifyInstance) => app.inject({ method: 'GET', url: '/health/live' });

/** GET /health/ready with Redis configured: every dependency is checked, and a dead one makes it 503. */
describe(`readiness with Redis, ${bullmq.name}`, () => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  beforeAll(async () => {
    menv = await modeEnv(bullmq, 'ready');
    tdb = await bullmq.kind.create();
  });
  afterAll(async () => {
    await tdb?.drop();
    await menv?.cleanup();
  });

  it('is 200 with database, redis and queue ok when Redis answers', async () => {
    const app = await createTestApp(tdb.db, menv.env);
    try {
      const res = await ready(app);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok', redis: 'ok', queue: 'ok' } });
    } finally {
      await app.close();
    }
  });

  describe('when Redis is unreachable', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      // Port 1: nothing listens there, so every connection attempt is refused.
      app = await createTestApp(tdb.db, { ...menv.env, REDIS_URL: 'redis://127.0.0.1:1' });
    });

    it('is 503 with redis (and the queue on it) failing while the database is ok', async () => {
      const res = await ready(app);
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toEqual({
        status: 'unavailable',
        checks: { database: 'ok', redis: 'failing', queue: 'failing' },
      });
      // Liveness is not readiness: the process still answers, and so does the API.
      expect((await live(app)).statusCode).toBe(200);
      const user = await createUser(app);
      const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: user.auth });
      expect(me.statusCode, me.body).toBe(200);
    });

    it('still closes: shutdown does not wait for a Redis that never answers', async () => {
      // A hang detector, not a speed test: closing takes milliseconds or never ends.
      const outcome = await Promise.race([
        app.close().then(() => 'closed'),
        sleep(10_000).then(() => 'still closing after 10 s'),
      ]);
      expect(outcome).toBe('closed');
    });
  });
});

describe('readiness without Redis (pg-boss)', () => {
  it('checks the database only', async () => {
    const tdb = await pglite.create();
    const app = await createTestApp(tdb.db, NO_SHEDDING);
    try {
      const res = await ready(app);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok' } });
    } finally {
      await app.close();
      await tdb.drop();
    }
  });
});

/**
 * Load shedding (@fastify/under-pressure, MAX_EVENT_LOOP_DELAY_MS). It samples the event-loop
 * delay once a second (the mean over the last second), so the test blocks the loop in bursts
 * until a request is shed, rather than assuming how long one block takes to register.
 */
describe('load shedding', () => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    tdb = await pglite.create();
    app = await createTestApp(tdb.db, { MAX_EVENT_LOOP_DELAY_MS: '20' });
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const busy = (ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // Blocks the event loop on purpose.
    }
  };
  const probe = () => app.inject({ method: 'GET', url: '/api/v1/auth/me' });

  it('answers 503 overloaded with Retry-After while the event loop lags; /health/live still answers', async () => {
    await waitFor('an unpressured app', async () => !app.isUnderPressure() || undefined);
    expectError(await probe(), 401, 'unauthorized');

    const shed = await waitFor('a shed request', async () => {
      busy(300);
      // Let the sampler's overdue timer run before the next request.
      await new Promise((r) => setTimeout(r, 5));
      if (!app.isUnderPressure()) return undefined;
      const [api, alive] = await Promise.all([probe(), live(app)]);
      return api.statusCode === 503 && app.isUnderPressure() ? { api, alive } : undefined;
    });
    const error = expectError(shed.api, 503, 'overloaded');
    expect(error.message).toMatch(/overloaded/);
    expect(shed.api.headers['retry-after']).toBe('5');
    // Served in the same pressured sample: liveness is exempt from shedding.
    expect(shed.alive.statusCode).toBe(200);
    expect(shed.alive.json()).toEqual({ status: 'ok' });

    // Once the loop is idle again the next samples clear the pressure and requests are served.
    await waitFor('the pressure to clear', async () => !app.isUnderPressure() || undefined);
    expectError(await probe(), 401, 'unauthorized');
  });
});
