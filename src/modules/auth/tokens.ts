import { createHash, randomBytes } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';

export interface AccessClaims {
  /** user id */
  sub: string;
  /** tenant the session was opened for, if any */
  tid?: string;
  /** the session (refresh-token family) the token was issued for: "sign out my other sessions" */
  sid?: string;
}

export interface TokenConfig {
  secret: string;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
}

/** HS256 access tokens; the algorithm, issuer and audience are pinned on verify. */
export function createAccessTokens(cfg: TokenConfig) {
  const sign = createSigner({
    key: cfg.secret,
    algorithm: 'HS256',
    expiresIn: cfg.accessTokenTtlSeconds * 1000,
    iss: cfg.issuer,
    aud: cfg.audience,
  });
  const verify = createVerifier({
    key: cfg.secret,
    algorithms: ['HS256'],
    allowedIss: cfg.issuer,
    allowedAud: cfg.audience,
    requiredClaims: ['sub', 'exp', 'iss', 'aud'],
    // Verified tokens are cached by fast-jwt (bounded LRU, never past their expiry).
    cache: 10_000,
  });
  return {
    sign: (claims: AccessClaims): string => sign(claims),
    /** Throws on any invalid, expired or tampered token. */
    verify: (token: string): AccessClaims => {
      const payload = verify(token) as { sub?: unknown; tid?: unknown; sid?: unknown };
      if (typeof payload.sub !== 'string') throw new Error('token has no subject');
      return {
        sub: payload.sub,
        tid: typeof payload.tid === 'string' ? payload.tid : undefined,
        sid: typeof payload.sid === 'string' ? payload.sid : undefined,
      };
    },
    ttlSeconds: cfg.accessTokenTtlSeconds,
  };
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;

/** Opaque refresh tokens (and emailed single-use tokens): 256 random bits; only their SHA-256 is stored. */
export const newRefreshToken = (): string => randomBytes(32).toString('base64url');
export const newEmailToken = newRefreshToken;
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
