import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgDatabase } from '../../src/platform/db/pg.js';
import { createTestApp, TEST_JWT_SECRET, TEST_SECRETS_KEY } from '../helpers/app.js';
import { createServerDatabase, databaseKinds } from '../helpers/db.js';
import { PASSWORD } from '../helpers/factories.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = '127.0.0.1';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, HOST, resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

interface Res {
  status: number;
  body: string;
}
/** One request on its own connection (no keep-alive pool between tests and server). */
function request(port: number, method: string, path: string, opts: { headers?: object; body?: object } = {}) {
  return new Promise<Res>((resolve, reject) => {
    const payload = opts.body ? JSON.stringify(opts.body) : undefined;
    const req = http.request(
      {
        host: HOST,
        port,
        method,
        path,
        agent: false,
        headers: { ...(payload && { 'content-type': 'application/json' }), ...opts.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A POST whose body is held back after its first bytes: in flight, provably, until `release()`. */
function heldPost(port: number, path: string, headers: object, body: object) {
  const payload = JSON.stringify(body);
  let release = () => {};
  const done = new Promise<Res>((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        method: 'POST',
        path,
        agent: false,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.write(payload.slice(0, 5));
    release = () => req.end(payload.slice(5));
  });
  return { done, release: () => release() };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Server {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
function startServer(env: Record<string, string>): Server {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines.filter(Boolean)) logs.push(JSON.parse(line));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, logs, stderr: () => err, exited };
}

const running: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const fn of cleanups.splice(0)) await fn();
});

describe.each(databaseKinds)('graceful shutdown of a real server process on $name', (kind) => {
  it('finishes every in-flight request on SIGTERM, exits 0, then refuses connections', {
    timeout: 120_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'quire-shutdown-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const env: Record<string, string> = {
      PORT: String(await freePort()),
      HOST,
      DATA_DIR: dataDir,
      JWT_SECRET: TEST_JWT_SECRET,
      SECRETS_KEY: TEST_SECRETS_KEY,
      LOG_LEVEL: 'info',
      NODE_ENV: 'production',
      // The batch signs in 14 times at once with one account: above the per-email sign-in limit.
      LOGIN_RATE_LIMIT_MAX: '100',
      // Not a load-shedding test: an embedded database migrating at start lags the event loop
      // on a busy machine, and a 503 there is not what this test is about.
      MAX_EVENT_LOOP_DELAY_MS: '0',
    };
    if (kind.name === 'postgres') {
      const target = await createServerDatabase(process.env.TEST_DATABASE_URL!);
      cleanups.push(() => target.drop());
      env.DATABASE_URL = target.url;
    }
    const port = Number(env.PORT);
    const server = startServer(env);
    running.push(server.child);
    await waitFor('/health/live', () =>
      request(port, 'GET', '/health/live').then(
        (r) => r.status === 200,
        () => false,
      ),
    );

    const creds = { email: 'drain@example.com', password: PASSWORD };
    expect((await request(port, 'POST', '/api/v1/auth/register', { body: { ...creds, name: 'D' } })).status).toBe(201);
    const login = await request(port, 'POST', '/api/v1/auth/login', { body: creds });
    const auth = { authorization: `Bearer ${JSON.parse(login.body).data.accessToken}` };
    const tenant = await request(port, 'POST', '/api/v1/tenants', {
      headers: auth,
      body: { name: 'D', slug: 'drain' },
    });
    expect(tenant.status).toBe(201);
    const tenantId = JSON.parse(tenant.body).data.id as string;

    // 14 sign-ins at once (argon2 on a 4-thread pool: they queue), and 6 post creations whose bodies
    // are held back: those cannot finish before the signal, whatever the machine's speed.
    const logins = Array.from({ length: 14 }, (_, i) => ({
      reqId: `batch-login-${i}`,
      expected: 200,
      done: request(port, 'POST', '/api/v1/auth/login', {
        headers: { 'x-request-id': `batch-login-${i}` },
        body: creds,
      }),
    }));
    const held = Array.from({ length: 6 }, (_, i) => ({
      reqId: `batch-post-${i}`,
      expected: 201,
      ...heldPost(
        port,
        '/api/v1/posts',
        { ...auth, 'x-tenant-id': tenantId, 'x-request-id': `batch-post-${i}` },
        { title: `Drained ${i}`, body: 'text' },
      ),
    }));
    const batch = [...logins, ...held];
    const settled = batch.map((b) => b.done.catch((e: Error) => ({ status: -1, body: e.message })));
    // SIGTERM once the server has taken in every one of them (its "incoming request" log lines).
    const arrived = () => new Set(server.logs.filter((l) => l.msg === 'incoming request').map((l) => l.reqId));
    await waitFor('the batch to reach the server', () => batch.every((b) => arrived().has(b.reqId)), 10_000);
    const signalledAt = server.logs.length;
    server.child.kill('SIGTERM');

    // Draining: the server logs its shutdown and stops accepting connections; then the held bodies arrive.
    await waitFor('the shutdown log', () => server.logs.some((l) => l.msg === 'shutting down'), 10_000);
    await waitFor('new connections to be refused', () =>
      request(port, 'GET', '/health/live').then(
        () => false,
        (e: { code?: string }) => e.code === 'ECONNREFUSED',
      ),
    );
    for (const h of held) h.release();

    const results = await Promise.all(settled);
    expect(batch.map((b, i) => `${b.reqId} → ${results[i]!.status}`)).toEqual(
      batch.map((b) => `${b.reqId} → ${b.expected}`),
    );
    expect(await server.exited).toEqual({ code: 0, signal: null });

    const after = server.logs.slice(signalledAt);
    expect(after).toContainEqual(expect.objectContaining({ msg: 'shutting down', signal: 'SIGTERM' }));
    const completedAfter = after.filter((l) => l.msg === 'request completed').map((l) => String(l.reqId));
    expect(completedAfter).toEqual(expect.arrayContaining(held.map((h) => h.reqId)));
    expect(server.stderr()).toBe('');
    await expect(request(port, 'GET', '/health/live')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    // Nothing was lost: a restart on the same data finds every post the batch created.
    const port2 = await freePort();
    const again = startServer({ ...env, PORT: String(port2) });
    running.push(again.child);
    await waitFor('the restarted server', () =>
      request(port2, 'GET', '/health/live').then(
        (r) => r.status === 200,
        () => false,
      ),
    );
    const relogin = JSON.parse((await request(port2, 'POST', '/api/v1/auth/login', { body: creds })).body);
    const list = await request(port2, 'GET', '/api/v1/posts?limit=100', {
      headers: { authorization: `Bearer ${relogin.data.accessToken}`, 'x-tenant-id': tenantId },
    });
    const titles = (JSON.parse(list.body).data as Array<{ title: string }>).map((p) => p.title).sort();
    expect(titles).toEqual(held.map((_, i) => `Drained ${i}`).sort());
    again.child.kill('SIGTERM');
    expect(await again.exited).toEqual({ code: 0, signal: null });
  });
});

describe('start-up configuration errors', () => {
  it.each([
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['JWT_SECRET', { JWT_SECRET: '' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://db/quire' }],
  ])('stops with exit code 1 and one stderr line naming %s', { timeout: 60_000 }, async (name, bad) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'quire-config-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = {
      DATA_DIR: dataDir,
      NODE_ENV: 'production',
      JWT_SECRET: TEST_JWT_SECRET,
      SECRETS_KEY: TEST_SECRETS_KEY,
      ...bad,
    } as Record<string, string>;
    if (env.JWT_SECRET === '') delete env.JWT_SECRET;
    const server = startServer(env);
    running.push(server.child);
    const { code } = await server.exited;
    expect(code).toBe(1);
    const lines = server.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^Invalid configuration: ${name}: \\S`));
    expect(server.logs).toEqual([]);
  });
});

describe.each(databaseKinds)('readiness on $name', (kind) => {
  it('GET /health/ready is 200 while the database answers, 503 once it is closed', async () => {
    const tdb = await kind.create();
    cleanups.push(() => tdb.drop());
    // On PostgreSQL a pool of our own, so closing it leaves the harness's to drop the database.
    const db = kind.name === 'postgres' ? createPgDatabase({ url: tdb.url!, poolMax: 1 }) : tdb.db;
    const app = await createTestApp(db);
    cleanups.unshift(() => app.close());
    const up = await app.inject({ url: '/health/ready' });
    expect([up.statusCode, up.json()]).toEqual([200, { status: 'ok', checks: { database: 'ok' } }]);
    await db.close();
    const down = await app.inject({ url: '/health/ready' });
    expect([down.statusCode, down.json()]).toEqual([503, { status: 'unavailable', checks: { database: 'failing' } }]);
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
  });
});

it('GET /health/ready is 503 when the PostgreSQL server cannot be reached', async () => {
  const db = createPgDatabase({ url: `postgres://quire@${HOST}:${await freePort()}/quire`, poolMax: 1 });
  const app = await createTestApp(db);
  try {
    const res = await app.inject({ url: '/health/ready' });
    expect([res.statusCode, res.json()]).toEqual([503, { status: 'unavailable', checks: { database: 'failing' } }]);
  } finally {
    await app.close();
    await db.close();
  }
});
