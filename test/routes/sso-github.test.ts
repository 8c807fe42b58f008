import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';

/**
 * "Sign in with GitHub" (OAuth 2.0 without ID tokens: the account and its verified primary email
 * come from GitHub's REST API), configured as a GitHub Enterprise Server at its own address.
 *
 * FAKE, named as such: GitHub cannot run on this machine (no internet), so a small HTTP server
 * on 127.0.0.1 plays it, speaking GitHub's documented endpoints (`/login/oauth/authorize`,
 * `/login/oauth/access_token`, `/api/v3/user`, `/api/v3/user/emails`) and checking what GitHub
 * checks: the client's credentials, the redirect URI, single-use codes, and the PKCE verifier
 * (S256). The app side is real: openid-client, the state cookie, account linking.
 */

const PUBLIC_URL = 'http://quire.test';
const CALLBACK = `${PUBLIC_URL}/api/v1/auth/oidc/callback`;
const CLIENT = { id: 'gh-client', secret: 'gh-client-secret-0123456789' };

interface GithubUser {
  id: number;
  login: string;
  name: string | null;
  emails: Array<{ email: string; primary: boolean; verified: boolean }>;
}

/** FAKE GitHub (see above). `signIn` plays the browser: authorize → the redirect back to Quire. */
async function startFakeGithub() {
  const users = new Map<string, GithubUser>();
  const codes = new Map<string, { login: string; challenge: string; redirectUri: string }>();
  const tokens = new Map<string, string>();
  const seen = { scopes: [] as string[], tokenAuth: [] as string[] };

  const body = async (req: IncomingMessage) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    return new URLSearchParams(raw);
  };
  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://github.local');
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      // The user approves at once; `login` names them (the test's browser adds it).
      const q = url.searchParams;
      if (q.get('client_id') !== CLIENT.id || q.get('redirect_uri') !== CALLBACK) return json(res, 400, {});
      if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) return json(res, 400, {});
      seen.scopes.push(q.get('scope') ?? '');
      const code = randomBytes(10).toString('hex');
      codes.set(code, { login: q.get('login') ?? '', challenge: q.get('code_challenge')!, redirectUri: CALLBACK });
      const back = new URL(CALLBACK);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      // GitHub's documented way: client_id and client_secret as form parameters.
      const form = await body(req);
      seen.tokenAuth.push(req.headers.authorization ? 'header' : 'form');
      if (form.get('client_id') !== CLIENT.id || form.get('client_secret') !== CLIENT.secret) {
        return json(res, 401, { error: 'incorrect_client_credentials' });
      }
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      if (!grant || grant.challenge !== challenge || form.get('redirect_uri') !== grant.redirectUri) {
        return json(res, 400, { error: 'bad_verification_code' });
      }
      const token = `gho_${randomBytes(12).toString('hex')}`;
      tokens.set(token, grant.login);
      return json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
    }
    const login = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
    const user = login === undefined ? undefined : users.get(login);
    if (!user) return json(res, 401, { message: 'Bad credentials' });
    if (req.method === 'GET' && url.pathname === '/api/v3/user') {
      return json(res, 200, { id: user.id, login: user.login, name: user.name });
    }
    if (req.method === 'GET' && url.pathname === '/api/v3/user/emails') return json(res, 200, user.emails);
    return json(res, 404, { message: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    base,
    users,
    seen,
    /** As the browser: GitHub's authorize page approves as `login`; the URL it sends the browser back to. */
    async signIn(authorizeUrl: string, login: string): Promise<URL> {
      const url = new URL(authorizeUrl);
      url.searchParams.set('login', login);
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(302);
      return new URL(res.headers.get('location')!);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(databaseKinds)('sign in with GitHub (Enterprise Server, played by a fake) on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let github: Awaited<ReturnType<typeof startFakeGithub>>;

  beforeAll(async () => {
    github = await startFakeGithub();
    tdb = await kind.create();
    app = await createTestApp(tdb.db, {
      PUBLIC_URL,
      OIDC_ALLOW_INSECURE: 'true',
      OIDC_PROVIDERS: JSON.stringify([
        {
          id: 'ghe',
          type: 'github',
          name: 'GitHub Enterprise',
          issuer: github.base,
          clientId: CLIENT.id,
          clientSecret: CLIENT.secret,
        },
      ]),
    });
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await github?.close();
  });

  /** authorize → GitHub → the callback with the state cookie: the callback's answer. */
  async function signIn(login: string) {
    const start = await app.inject({ url: '/api/v1/auth/oidc/ghe/authorize' });
    expect(start.statusCode, start.body).toBe(302);
    const location = new URL(start.headers.location as string);
    expect(location.origin + location.pathname).toBe(`${github.base}/login/oauth/authorize`);
    expect(location.searchParams.has('nonce')).toBe(false);
    const state = start.cookies.find((c) => c.name === 'quire_oidc_state')!.value;
    const back = await github.signIn(location.href, login);
    return app.inject({
      url: `/api/v1/auth/oidc/callback${back.search}`,
      cookies: { quire_oidc_state: state },
    });
  }

  it('creates the account from the verified primary email, with PKCE and the client credentials checked by GitHub', async () => {
    const login = `octo-${randomBytes(3).toString('hex')}`;
    github.users.set(login, {
      id: 1000 + github.users.size,
      login,
      name: 'Octo Cat',
      emails: [
        { email: `${login}@users.noreply.test`, primary: false, verified: true },
        { email: `${login}@example.com`, primary: true, verified: true },
      ],
    });
    const res = await signIn(login);
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json().data;
    expect(data.user).toMatchObject({ email: `${login}@example.com`, name: 'Octo Cat' });
    expect(github.seen.scopes.at(-1)).toBe('read:user user:email');
    expect(github.seen.tokenAuth.at(-1)).toBe('form');

    // The same GitHub account again: the same Quire account (linked by GitHub's user id).
    github.users.get(login)!.emails[1]!.email = `${login}@new-address.example`;
    const again = await signIn(login);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().data.user.id).toBe(data.user.id);
  });

  it('refuses an account whose primary email GitHub has not verified', async () => {
    const login = `unverified-${randomBytes(3).toString('hex')}`;
    github.users.set(login, {
      id: 5000 + github.users.size,
      login,
      name: null,
      emails: [{ email: `${login}@example.com`, primary: true, verified: false }],
    });
    expectError(await signIn(login), 403, 'oidc_email_unverified');
  });

  it('a code GitHub refuses is a 401; a redirect replayed is a 400 (the state works once)', async () => {
    const login = `replay-${randomBytes(3).toString('hex')}`;
    github.users.set(login, {
      id: 9000 + github.users.size,
      login,
      name: 'Replay',
      emails: [{ email: `${login}@example.com`, primary: true, verified: true }],
    });
    const start = await app.inject({ url: '/api/v1/auth/oidc/ghe/authorize' });
    const state = start.cookies.find((c) => c.name === 'quire_oidc_state')!.value;
    const back = await github.signIn(start.headers.location as string, login);
    const first = await app.inject({
      url: `/api/v1/auth/oidc/callback${back.search}`,
      cookies: { quire_oidc_state: state },
    });
    expect(first.statusCode, first.body).toBe(200);
    const replay = await app.inject({
      url: `/api/v1/auth/oidc/callback${back.search}`,
      cookies: { quire_oidc_state: state },
    });
    expectError(replay, 400, 'oidc_state_invalid');

    // A fresh sign-in whose code is not the one GitHub issued: GitHub refuses it, so does Quire.
    const again = await app.inject({ url: '/api/v1/auth/oidc/ghe/authorize' });
    const againState = again.cookies.find((c) => c.name === 'quire_oidc_state')!.value;
    const returned = await github.signIn(again.headers.location as string, login);
    returned.searchParams.set('code', 'not-the-issued-code');
    expectError(
      await app.inject({
        url: `/api/v1/auth/oidc/callback${returned.search}`,
        cookies: { quire_oidc_state: againState },
      }),
      401,
      'oidc_failed',
    );
  });
});
