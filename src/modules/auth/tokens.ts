import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { createDecoder, createSigner, createVerifier } from 'fast-jwt';

export interface AccessClaims {
  /** user id */
  sub: string;
  /** tenant the session was opened for, if any */
  tid?: string;
  /** the session (refresh-token family) the token was issued for: "sign out my other sessions" */
  sid?: string;
  /** how the session was authenticated (RFC 8176 values: `pwd`, `otp`; and `sso`) */
  amr?: string[];
}

/**
 * Signing keys. Either a shared secret (HS256; JWT_SECRET), or a private key (EdDSA, ES256 or
 * RS256, from its type; JWT_PRIVATE_KEY) whose public half is published as a JWKS. Rotation:
 * sign with the new key and keep the old ones in `previous` until the last token they signed
 * has expired (15 minutes): nobody is signed out.
 */
export interface TokenKeys {
  /** HS256 secret, or a PEM private key. */
  current: string;
  /** The current key's id (the `kid` header); derived from the key when absent. */
  currentKid?: string;
  /** Keys that still verify: kid → HS256 secret or PEM public key. */
  previous?: Record<string, string>;
}

export interface TokenConfig {
  keys: TokenKeys;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
}

type Algorithm = 'HS256' | 'EdDSA' | 'ES256' | 'RS256';

interface VerifyKey {
  kid: string;
  algorithm: Algorithm;
  verify: (token: string) => unknown;
  /** The public half, for the JWKS (asymmetric keys only). */
  publicKey?: KeyObject;
}

const isPem = (key: string) => key.includes('-----BEGIN');

function algorithmOf(key: KeyObject): Algorithm {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'EdDSA';
    case 'ec':
      if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
        throw new Error('EC signing keys must be P-256 (ES256)');
      return 'ES256';
    case 'rsa':
      return 'RS256';
    default:
      throw new Error(`unsupported signing key type: ${key.asymmetricKeyType}`);
  }
}

/** A key id from the key itself: the same key always gets the same id on every instance. */
const derivedKid = (material: string | Buffer) =>
  createHash('sha256').update(material).digest('base64url').slice(0, 16);

/**
 * Access tokens: 15-minute JWTs, the algorithm pinned per key (a token's `alg` must be its key's:
 * no `none`, no HS256 signed with a public key), `iss`, `aud`, `exp` and `sub` required, and a
 * `kid` naming the key, looked up among the current and previous keys only.
 */
export function createAccessTokens(cfg: TokenConfig) {
  const verifyOptions = {
    allowedIss: cfg.issuer,
    allowedAud: cfg.audience,
    requiredClaims: ['sub', 'exp', 'iss', 'aud'],
    // Verified tokens are cached by fast-jwt (bounded LRU, never past their expiry).
    cache: 10_000,
  };

  function verifyKey(kid: string, material: string, isPrivate: boolean): VerifyKey {
    if (!isPem(material)) {
      if (material.length < 32) throw new Error(`JWT key ${kid}: an HS256 secret must be at least 32 characters`);
      return {
        kid,
        algorithm: 'HS256',
        verify: createVerifier({ ...verifyOptions, key: material, algorithms: ['HS256'] }),
      };
    }
    const publicKey = isPrivate ? createPublicKey(createPrivateKey(material)) : createPublicKey(material);
    const algorithm = algorithmOf(publicKey);
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    return {
      kid,
      algorithm,
      publicKey,
      verify: createVerifier({ ...verifyOptions, key: pem, algorithms: [algorithm] }),
    };
  }

  const current = cfg.keys.current;
  const currentKid =
    cfg.keys.currentKid ??
    derivedKid(
      isPem(current) ? createPublicKey(createPrivateKey(current)).export({ type: 'spki', format: 'der' }) : current,
    );
  const currentVerify = verifyKey(currentKid, current, true);
  const keys = new Map<string, VerifyKey>([[currentKid, currentVerify]]);
  for (const [kid, material] of Object.entries(cfg.keys.previous ?? {})) {
    if (!keys.has(kid)) keys.set(kid, verifyKey(kid, material, false));
  }

  const sign = createSigner({
    key: current,
    algorithm: currentVerify.algorithm,
    kid: currentKid,
    expiresIn: cfg.accessTokenTtlSeconds * 1000,
    iss: cfg.issuer,
    aud: cfg.audience,
  });
  const decodeHeader = createDecoder({ complete: true });

  return {
    sign: (claims: AccessClaims): string => sign(claims),
    /** Throws on any invalid, expired or tampered token, or one whose key is not ours. */
    verify: (token: string): AccessClaims => {
      const { header } = decodeHeader(token) as { header: { kid?: unknown; alg?: unknown } };
      // Tokens from before key ids (signed with the current HS256 secret) are still accepted.
      const kid = typeof header.kid === 'string' ? header.kid : currentVerify.algorithm === 'HS256' ? currentKid : '';
      const key = keys.get(kid);
      if (!key) throw new Error('unknown signing key');
      if (header.alg !== key.algorithm) throw new Error('algorithm does not match the key');
      const payload = key.verify(token) as { sub?: unknown; tid?: unknown; sid?: unknown; amr?: unknown };
      if (typeof payload.sub !== 'string') throw new Error('token has no subject');
      return {
        sub: payload.sub,
        tid: typeof payload.tid === 'string' ? payload.tid : undefined,
        sid: typeof payload.sid === 'string' ? payload.sid : undefined,
        amr: Array.isArray(payload.amr) ? payload.amr.filter((v): v is string => typeof v === 'string') : undefined,
      };
    },
    /** The public keys (asymmetric signing only), as a JSON Web Key Set. */
    jwks: () => ({
      keys: [...keys.values()]
        .filter((k) => k.publicKey)
        .map((k) => ({ ...k.publicKey!.export({ format: 'jwk' }), kid: k.kid, alg: k.algorithm, use: 'sig' })),
    }),
    kid: currentKid,
    algorithm: currentVerify.algorithm,
    ttlSeconds: cfg.accessTokenTtlSeconds,
  };
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;

/** Opaque refresh tokens (and emailed single-use tokens): 256 random bits; only their SHA-256 is stored. */
export const newRefreshToken = (): string => randomBytes(32).toString('base64url');
export const newEmailToken = newRefreshToken;
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
