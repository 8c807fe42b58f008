import { lookup as lookupCallback } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { AppError, badRequest } from '../../shared/errors.js';

/** An identity provider a sign-in can go through. */
export interface ProviderConfig {
  /** `google`, `github`, another platform id, or `tenant:<id>`. */
  key: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** `github`: OAuth 2.0 without ID tokens, at github.com or a GitHub Enterprise Server (`issuer`). */
  type?: 'oidc' | 'github';
}

/** What Quire takes from a provider: who (issuer-scoped subject) and a verified email. */
export interface ExternalIdentity {
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
}

const GITHUB = 'https://github.com';
/** GitHub's REST API: its own host for github.com, `/api/v3` on an Enterprise Server. */
const githubApi = (issuer: string) => (issuer === GITHUB ? 'https://api.github.com' : `${issuer}/api/v3`);
const DISCOVERY_TTL_MS = 3_600_000;

/** Addresses an organization's issuer may not point at: loopback, private, link-local, CGNAT, ULA. */
const privateRanges = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::1', 128],
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['::ffff:0:0', 96],
] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv6');
}

const isPrivate = (address: string, family: number) => privateRanges.check(address, family === 6 ? 'ipv6' : 'ipv4');

/**
 * Every request to an identity provider (discovery, the endpoints its document names, keys,
 * user info) connects only to public addresses, checked on the address actually connected to:
 * an issuer whose document points inside the network, or a name that resolves differently the
 * second time (DNS rebinding), is refused.
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  lookupCallback(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const bad = addresses.find((a) => isPrivate(a.address, a.family));
    if (bad || addresses.length === 0) {
      return callback(new Error(`${hostname} resolves to a private address`), '', 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: typeof addresses) => void)(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};
const publicOnlyAgent = new Agent({ connect: { lookup: publicOnlyLookup } });
export const publicOnlyFetch: client.CustomFetch = async (url, options) => {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  const family = isIP(host);
  if (family && isPrivate(host, family)) throw new Error(`${host} is a private address`);
  return (await undiciFetch(url, { ...(options as object), dispatcher: publicOnlyAgent })) as unknown as Response;
};

const discoveryFailed = (issuer: string) =>
  badRequest('oidc_discovery_failed', `Could not read the OpenID configuration of ${issuer}`);

/**
 * The OAuth side of sign-in, through `openid-client`: discovery (cached), the authorization
 * URL with PKCE (S256), state and nonce, and the code exchange that checks all three and the ID
 * token. GitHub is OAuth 2.0 without ID tokens: its endpoints are built in and the verified
 * primary email comes from its API. Issuers are https on public addresses unless
 * `allowInsecure` (development, tests): an organization's issuer URL is fetched by the server,
 * so it must not reach inside the network.
 */
export function createOidcClient(opts: { redirectUri: string; allowInsecure: boolean }) {
  const configs = new Map<string, { config: client.Configuration; at: number; fingerprint: string }>();

  async function assertPublicIssuer(issuer: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(issuer);
    } catch {
      throw badRequest('invalid_issuer', 'The issuer must be a URL');
    }
    if (opts.allowInsecure) return;
    if (url.protocol !== 'https:') throw badRequest('invalid_issuer', 'The issuer must be an https URL');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: Array<{ address: string; family: number }>;
    try {
      addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
    } catch {
      throw badRequest('invalid_issuer', `The issuer's host ${host} could not be resolved`);
    }
    for (const a of addresses) {
      if (isPrivate(a.address, a.family)) throw badRequest('invalid_issuer', 'The issuer must be on a public address');
    }
  }

  async function configure(p: ProviderConfig): Promise<client.Configuration> {
    const fingerprint = `${p.issuer}|${p.clientId}|${p.clientSecret}`;
    const cached = configs.get(p.key);
    if (cached && cached.fingerprint === fingerprint && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    let config: client.Configuration;
    if (p.type === 'github') {
      const base = p.issuer.replace(/\/+$/, '');
      if (base !== GITHUB) await assertPublicIssuer(base);
      config = new client.Configuration(
        {
          issuer: base,
          authorization_endpoint: `${base}/login/oauth/authorize`,
          token_endpoint: `${base}/login/oauth/access_token`,
        },
        p.clientId,
        undefined,
        // GitHub takes the client's credentials as form parameters of the token request.
        client.ClientSecretPost(p.clientSecret),
      );
      if (opts.allowInsecure) client.allowInsecureRequests(config);
    } else {
      await assertPublicIssuer(p.issuer);
      try {
        config = await client.discovery(
          new URL(p.issuer),
          p.clientId,
          undefined,
          client.ClientSecretBasic(p.clientSecret),
          opts.allowInsecure
            ? { execute: [client.allowInsecureRequests], timeout: 10 }
            : { [client.customFetch]: publicOnlyFetch, timeout: 10 },
        );
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw discoveryFailed(p.issuer);
      }
    }
    if (!opts.allowInsecure) config[client.customFetch] = publicOnlyFetch;
    configs.set(p.key, { config, at: Date.now(), fingerprint });
    return config;
  }

  return {
    redirectUri: opts.redirectUri,
    assertPublicIssuer,
    /** Checks that the issuer answers with a usable OpenID configuration (when an owner saves it). */
    async probe(p: ProviderConfig): Promise<void> {
      configs.delete(p.key);
      await configure(p);
    },
    forget: (key: string) => configs.delete(key),

    /** Where to send the browser, and the secrets to keep for the callback. */
    async start(p: ProviderConfig) {
      const config = await configure(p);
      const state = client.randomState();
      const nonce = client.randomNonce();
      const codeVerifier = client.randomPKCECodeVerifier();
      const isGithub = p.type === 'github';
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: opts.redirectUri,
        scope: isGithub ? 'read:user user:email' : 'openid email profile',
        state,
        ...(isGithub ? {} : { nonce }),
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return { url, state, nonce, codeVerifier };
    },

    /** The provider's redirect back: exchanges the code (checking state, nonce and PKCE) for an identity. */
    async finish(
      p: ProviderConfig,
      callbackUrl: URL,
      checks: { state: string; nonce: string; codeVerifier: string },
    ): Promise<ExternalIdentity> {
      const config = await configure(p);
      const isGithub = p.type === 'github';
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(config, callbackUrl, {
          pkceCodeVerifier: checks.codeVerifier,
          expectedState: checks.state,
          ...(isGithub ? {} : { expectedNonce: checks.nonce, idTokenExpected: true }),
        });
      } catch {
        throw new AppError(401, 'oidc_failed', 'The identity provider did not confirm this sign-in; start again');
      }
      if (isGithub) return githubIdentity(config, githubApi(config.serverMetadata().issuer), tokens.access_token);
      const claims = tokens.claims();
      if (!claims) throw new AppError(401, 'oidc_failed', 'The identity provider sent no ID token');
      return {
        subject: claims.sub,
        email: typeof claims.email === 'string' ? claims.email : null,
        emailVerified: claims.email_verified === true,
        name: typeof claims.name === 'string' ? claims.name : null,
      };
    },
  };
}

/** GitHub: the user id is the subject; the email is the primary, verified one from /user/emails. */
async function githubIdentity(
  config: client.Configuration,
  api: string,
  accessToken: string,
): Promise<ExternalIdentity> {
  const get = async (path: string) => {
    const res = await client.fetchProtectedResource(
      config,
      accessToken,
      new URL(`${api}${path}`),
      'GET',
      undefined,
      new Headers({ accept: 'application/vnd.github+json' }),
    );
    if (!res.ok) throw new AppError(401, 'oidc_failed', 'GitHub did not return the account');
    return res.json() as Promise<unknown>;
  };
  const user = (await get('/user')) as { id?: number; name?: string | null; login?: string };
  const emails = (await get('/user/emails')) as Array<{ email: string; primary: boolean; verified: boolean }>;
  const primary = emails.find((e) => e.primary && e.verified);
  if (typeof user.id !== 'number') throw new AppError(401, 'oidc_failed', 'GitHub did not return the account');
  return {
    subject: String(user.id),
    email: primary?.email ?? null,
    emailVerified: Boolean(primary),
    name: user.name ?? user.login ?? null,
  };
}

export type OidcClient = ReturnType<typeof createOidcClient>;
