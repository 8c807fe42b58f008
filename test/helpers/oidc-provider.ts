import { generateKeyPair, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

/**
 * A real OpenID Connect provider (the `oidc-provider` package, v9) on http://127.0.0.1:<random port>,
 * for tests of a relying party. Authorization code flow only, PKCE (S256) required for every client,
 * `nonce` supported, ID tokens signed RS256 with a key pair generated at start, all state in memory.
 *
 * Scopes → claims: `openid` → sub, `email` → email + email_verified, `profile` → name. The claims are
 * put in the ID token itself (`conformIdTokenClaims: false`), not only in userinfo.
 *
 * Clients are confidential; a client may authenticate at the token endpoint with client_secret_basic
 * or client_secret_post (oidc-provider accepts either for a client registered with one of them).
 *
 * `signIn()` plays the user's browser: it follows the provider's redirects with a cookie jar, and at
 * each interaction (login, then consent) it POSTs to the harness's own interaction route on the same
 * server, which completes it with `provider.interactionFinished()`: login as the given `sub` (an
 * unknown `sub` ends the flow with `error=access_denied`), consent to every scope and claim requested.
 * Each `signIn()` uses a fresh cookie jar, i.e. a fresh browser with no provider session.
 *
 * Relying parties talking to it over http must opt in (openid-client v6: `allowInsecureRequests`,
 * e.g. `discovery(new URL(issuer), id, secret, undefined, { execute: [allowInsecureRequests] })`).
 */
export interface OidcAccount {
  email: string;
  /** Default true. */
  emailVerified?: boolean;
  name?: string;
}

export interface OidcTestProvider {
  /** http://127.0.0.1:<port>, no trailing slash. */
  issuer: string;
  /** Accounts can be added/changed while running; the key is the `sub`. */
  setAccount(sub: string, account: OidcAccount): void;
  /**
   * Acts as the user's browser: GETs `authorizeUrl`, completes login (as `sub`) and consent, follows
   * the provider's redirects and returns the final redirect to the client's redirect_uri (not
   * followed), carrying `code` and `state` (or `error`). Throws if the provider answers with
   * anything but a redirect (e.g. its error page for an unknown client or redirect_uri).
   */
  signIn(authorizeUrl: string, sub: string): Promise<URL>;
  close(): Promise<void>;
}

export interface OidcTestClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

const HOST = '127.0.0.1';
const INTERACTION_PATH = /^\/interaction\/([^/?#]+)$/;
const MAX_REDIRECTS = 20;

// ---------------------------------------------------------------------------------------------
// The slice of the (untyped) oidc-provider API used here. It ships no types and
// @types/oidc-provider is not installed, so it is imported through a non-literal specifier below.

interface InteractionDetails {
  uid: string;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId: string };
  grantId?: string;
}

interface ProviderGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

interface InteractionResult {
  login?: { accountId: string };
  consent?: { grantId: string };
  error?: string;
  error_description?: string;
}

interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: InteractionResult,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  silent: boolean;
  Grant: {
    new (properties: { accountId: string; clientId: string }): ProviderGrant;
    find(id: string): Promise<ProviderGrant | undefined>;
  };
}

interface OidcProviderModule {
  Provider: new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;
}

const OIDC_PROVIDER: string = 'oidc-provider';
let loading: Promise<OidcProviderModule> | undefined;

/**
 * oidc-provider warns on import that Node 20 is not a supported runtime (it wants 22+); that one
 * line is dropped, anything else it prints goes through.
 */
function loadOidcProvider(): Promise<OidcProviderModule> {
  loading ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
      warn.apply(console, args);
    };
    try {
      return (await import(OIDC_PROVIDER)) as OidcProviderModule;
    } finally {
      console.warn = warn;
    }
  })();
  return loading;
}

// ---------------------------------------------------------------------------------------------
// Storage: a small in-memory adapter (passing none makes oidc-provider use its own and warn that it
// is for development only). One store per provider, entries expire like the provider asks.

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; consumed?: number };

function memoryAdapter() {
  const store = new Map<string, { payload: Payload; expiresAt: number }>();
  const live = (key: string) => {
    const entry = store.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry;
  };
  const findWhere = (model: string, predicate: (p: Payload) => boolean) => {
    for (const key of store.keys()) {
      const entry = key.startsWith(`${model}:`) ? live(key) : undefined;
      if (entry && predicate(entry.payload)) return structuredClone(entry.payload);
    }
    return undefined;
  };

  return (model: string) => ({
    async upsert(id: string, payload: Payload, expiresIn?: number) {
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
      store.set(`${model}:${id}`, { payload: structuredClone(payload), expiresAt });
    },
    async find(id: string) {
      const entry = live(`${model}:${id}`);
      return entry ? structuredClone(entry.payload) : undefined;
    },
    async findByUid(uid: string) {
      return findWhere(model, (p) => p.uid === uid);
    },
    async findByUserCode(userCode: string) {
      return findWhere(model, (p) => p.userCode === userCode);
    },
    async consume(id: string) {
      const entry = live(`${model}:${id}`);
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    },
    async destroy(id: string) {
      store.delete(`${model}:${id}`);
    },
    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of store) {
        if (entry.payload.grantId === grantId) store.delete(key);
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The browser's cookie jar: one host, so only name, path and expiry matter.

class CookieJar {
  private readonly cookies = new Map<string, { name: string; value: string; path: string; expiresAt: number }>();

  store(response: Response, url: URL): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = url.pathname.slice(0, url.pathname.lastIndexOf('/')) || '/';
      let expiresAt = Number.POSITIVE_INFINITY;
      let maxAge: number | undefined;
      for (const attribute of attributes) {
        const i = attribute.indexOf('=');
        const key = (i === -1 ? attribute : attribute.slice(0, i)).trim().toLowerCase();
        const val = i === -1 ? '' : attribute.slice(i + 1).trim();
        if (key === 'path' && val.startsWith('/')) path = val;
        else if (key === 'expires') expiresAt = Date.parse(val);
        else if (key === 'max-age') maxAge = Number(val);
      }
      if (maxAge !== undefined) expiresAt = Date.now() + maxAge * 1000;
      const id = `${name};${path}`;
      if (!(expiresAt > Date.now())) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path, expiresAt });
    }
  }

  header(url: URL): string | undefined {
    const now = Date.now();
    const matching = [...this.cookies.values()]
      .filter(({ path, expiresAt }) => expiresAt > now && pathMatches(url.pathname, path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map(({ name, value }) => `${name}=${value}`).join('; ') : undefined;
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  return requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}

// ---------------------------------------------------------------------------------------------

export async function startOidcProvider(opts: {
  clients: OidcTestClient[];
  accounts?: Record<string, OidcAccount>;
}): Promise<OidcTestProvider> {
  const accounts = new Map<string, OidcAccount>(Object.entries(opts.accounts ?? {}));
  const [{ Provider }, { privateKey }] = await Promise.all([
    loadOidcProvider(),
    promisify(generateKeyPair)('rsa', { modulusLength: 2048 }),
  ]);

  // The issuer has to be known before the provider exists, so listen first.
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => sendJson(res, 503, {});
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const issuer = `http://${HOST}:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: opts.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    adapter: memoryAdapter(),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // Scope-requested claims go in the ID token too, not only in userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    responseTypes: ['code'],
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
    },
    async findAccount(_ctx: unknown, sub: string) {
      if (!accounts.has(sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          const account = accounts.get(sub);
          if (!account) return { sub };
          return {
            sub,
            email: account.email,
            email_verified: account.emailVerified ?? true,
            ...(account.name === undefined ? {} : { name: account.name }),
          };
        },
      };
    },
    clientBasedCORS: () => false,
    renderError(ctx: { type: string; body: unknown }, out: Record<string, string>) {
      ctx.type = 'json';
      ctx.body = out;
    },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, Grant: 3600, IdToken: 3600, Interaction: 600, Session: 3600 },
  });
  // Koa would print every error it handles; the provider's own failures are still reported.
  provider.silent = true;
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

  const providerCallback = provider.callback();

  /** The harness's interaction "pages": GET shows the pending prompt, POST completes it. */
  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return sendJson(res, 400, { error: 'interaction uid mismatch' });
    if (req.method === 'GET') {
      return sendJson(res, 200, { uid, prompt: details.prompt, params: details.params, session: details.session });
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });

    switch (details.prompt.name) {
      case 'login': {
        const sub = form.get('sub') ?? '';
        if (!accounts.has(sub)) {
          return provider.interactionFinished(
            req,
            res,
            { error: 'access_denied', error_description: `unknown account: ${sub}` },
            { mergeWithLastSubmission: false },
          );
        }
        return provider.interactionFinished(
          req,
          res,
          { login: { accountId: sub } },
          { mergeWithLastSubmission: false },
        );
      }
      case 'consent': {
        const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details as {
          missingOIDCScope?: string[];
          missingOIDCClaims?: string[];
          missingResourceScopes?: Record<string, string[]>;
        };
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({
              accountId: details.session?.accountId ?? '',
              clientId: String(details.params.client_id),
            });
        if (!grant) return sendJson(res, 400, { error: 'grant not found' });
        if (missingOIDCScope?.length) grant.addOIDCScope(missingOIDCScope.join(' '));
        if (missingOIDCClaims?.length) grant.addOIDCClaims(missingOIDCClaims);
        for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
          grant.addResourceScope(resource, scopes.join(' '));
        }
        const grantId = await grant.save();
        return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
      default:
        return sendJson(res, 400, { error: `unsupported prompt: ${details.prompt.name}` });
    }
  }

  handle = (req, res) => {
    const uid = INTERACTION_PATH.exec(new URL(req.url ?? '/', issuer).pathname)?.[1];
    if (uid === undefined) {
      providerCallback(req, res);
      return;
    }
    interaction(req, res, decodeURIComponent(uid)).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      const e = err as { name?: string; message?: string };
      sendJson(res, 400, { error: e.name ?? 'Error', error_description: e.message ?? String(err) });
    });
  };

  const redirectUris = new Set(
    opts.clients.flatMap((c) => c.redirectUris.map((uri) => new URL(uri)).map((u) => `${u.origin}${u.pathname}`)),
  );
  const issuerOrigin = new URL(issuer).origin;

  async function signIn(authorizeUrl: string, sub: string): Promise<URL> {
    const jar = new CookieJar();
    let url = new URL(authorizeUrl);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      if (url.origin !== issuerOrigin || redirectUris.has(`${url.origin}${url.pathname}`)) return url;
      const isInteraction = INTERACTION_PATH.test(url.pathname);
      const headers: Record<string, string> = {};
      const cookie = jar.header(url);
      if (cookie) headers.cookie = cookie;
      const response = await fetch(url, {
        method: isInteraction ? 'POST' : 'GET',
        headers,
        redirect: 'manual',
        ...(isInteraction ? { body: new URLSearchParams({ sub }) } : {}),
      });
      jar.store(response, url);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) {
        const body = await response.text();
        throw new Error(`signIn: ${url.pathname} answered ${response.status} instead of a redirect: ${body}`);
      }
      await response.body?.cancel();
      url = new URL(location, url);
    }
    throw new Error(`signIn: more than ${MAX_REDIRECTS} redirects`);
  }

  return {
    issuer,
    setAccount(sub, account) {
      accounts.set(sub, account);
    },
    signIn,
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
