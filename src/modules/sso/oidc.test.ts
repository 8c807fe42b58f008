import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicOnlyFetch } from './oidc.js';

// A real HTTP server on loopback: the guarded fetch must never reach it, whether the URL names
// the address, a name that resolves to it (checked at connect time: no DNS rebinding), or IPv6.
describe('identity-provider requests reach public addresses only', () => {
  let server: Server;
  let port: number;
  let hits = 0;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each([
    ['an IPv4 loopback literal', () => `http://127.0.0.1:${port}/.well-known/openid-configuration`],
    ['a private IPv4 literal', () => 'http://10.1.2.3/token'],
    ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
    ['an IPv6 loopback literal', () => `http://[::1]:${port}/jwks`],
    ['a name that resolves to loopback', () => `http://localhost:${port}/userinfo`],
  ])('refuses %s', async (_label, url) => {
    const err = await publicOnlyFetch(url(), { method: 'GET', headers: {}, redirect: 'manual' } as never).then(
      () => null,
      (e: Error) => e,
    );
    // The guard's own reason (directly, or as the cause of undici's "fetch failed").
    expect(`${err?.message} ${(err?.cause as Error | undefined)?.message}`).toMatch(/private address/);
    expect(hits).toBe(0);
  });

  it('the same server is reachable without the guard (the refusals above are the guard, not the network)', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(hits).toBe(1);
  });
});
