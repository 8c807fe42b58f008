import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OidcTestProvider, startOidcProvider } from './helpers/oidc-provider.js';

/**
 * Self-test of the OIDC provider harness: a real oidc-provider on localhost, driven through the
 * authorization code flow (PKCE S256 + state + nonce) by a real openid-client v6 relying party.
 */
const CLIENT_ID = 'quire-test';
const CLIENT_SECRET = 'a-long-enough-client-secret-for-tests';
const REDIRECT_URI = 'http://127.0.0.1:9/auth/oidc/callback';
const SCOPE = 'openid email profile';

let op: OidcTestProvider;
let config: client.Configuration;

beforeAll(async () => {
  op = await startOidcProvider({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] }],
    accounts: { 'user-1': { email: 'ada@example.com', name: 'Ada Lovelace' } },
  });
  config = await client.discovery(new URL(op.issuer), CLIENT_ID, CLIENT_SECRET, client.ClientSecretBasic(), {
    execute: [client.allowInsecureRequests],
  });
});

afterAll(async () => {
  await op?.close();
});

/** Starts a flow and signs in as `sub`; returns the callback URL and the checks to redeem it with. */
async function authorize(sub: string) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await op.signIn(url.href, sub);
  return { callback, codeVerifier, state, nonce };
}

describe('OIDC provider harness', () => {
  it('discovers the provider', () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(op.issuer);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'email', 'profile']));
  });

  it('runs the authorization code flow with PKCE, state and nonce', async () => {
    const { callback, codeVerifier, state, nonce } = await authorize('user-1');
    expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('code')).toBeTruthy();

    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    const claims = tokens.claims();
    expect(claims).toMatchObject({
      iss: op.issuer,
      aud: CLIENT_ID,
      sub: 'user-1',
      nonce,
      email: 'ada@example.com',
      email_verified: true,
      name: 'Ada Lovelace',
    });
    expect(tokens.access_token).toBeTruthy();
  });

  it('serves accounts changed while running, and client_secret_post works too', async () => {
    op.setAccount('user-2', { email: 'grace@example.com', emailVerified: false });
    const postConfig = await client.discovery(new URL(op.issuer), CLIENT_ID, CLIENT_SECRET, client.ClientSecretPost(), {
      execute: [client.allowInsecureRequests],
    });
    const { callback, codeVerifier, state, nonce } = await authorize('user-2');
    const tokens = await client.authorizationCodeGrant(postConfig, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    const claims = tokens.claims();
    expect(claims).toMatchObject({ sub: 'user-2', email: 'grace@example.com', email_verified: false });
    expect(claims).not.toHaveProperty('name');
  });

  it('rejects a callback whose state does not match (openid-client)', async () => {
    const { callback, codeVerifier, nonce } = await authorize('user-1');
    const error = await client
      .authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: client.randomState(),
        expectedNonce: nonce,
      })
      .catch((e: unknown) => e);
    // openid-client wraps oauth4webapi's error: the detail is in `cause`, nothing was sent to the provider.
    expect(error).toMatchObject({
      code: 'OAUTH_INVALID_RESPONSE',
      cause: { message: 'unexpected "state" response parameter value' },
    });
  });

  it('rejects a wrong PKCE code verifier (provider: invalid_grant)', async () => {
    const { callback, state, nonce } = await authorize('user-1');
    const error = await client
      .authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: client.randomPKCECodeVerifier(),
        expectedState: state,
        expectedNonce: nonce,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(client.ResponseBodyError);
    expect(error).toMatchObject({ error: 'invalid_grant', status: 400 });
  });

  it('does not redeem a code twice', async () => {
    const { callback, codeVerifier, state, nonce } = await authorize('user-1');
    const checks = { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce };
    await client.authorizationCodeGrant(config, callback, checks);
    const error = await client.authorizationCodeGrant(config, callback, checks).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(client.ResponseBodyError);
    expect(error).toMatchObject({ error: 'invalid_grant' });
  });

  it('ends the flow with access_denied for an unknown account', async () => {
    const { callback, state } = await authorize('nobody');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.has('code')).toBe(false);
  });
});
