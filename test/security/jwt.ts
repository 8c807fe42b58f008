import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';

/**
 * Forged access tokens. Built by hand (not with the app's signer) so that every header and claim
 * can be wrong in exactly one way; the real secret comes from the test config.
 */

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')),
  };
}

export function hmac(header: object, payload: object, secret: string | Buffer, hash = 'sha256'): string {
  const data = `${b64(header)}.${b64(payload)}`;
  return `${data}.${createHmac(hash, secret).update(data).digest('base64url')}`;
}

function rsa(header: object, payload: object, key: KeyObject): string {
  const data = `${b64(header)}.${b64(payload)}`;
  return `${data}.${createSign('RSA-SHA256').update(data).sign(key).toString('base64url')}`;
}

const CORE = [
  'expired a minute ago',
  'tampered sub/tid (B owner), signature kept',
  'alg none as B owner',
  'alg none, empty signature',
  'unknown kid (real secret)',
  'right kid, another secret',
  'HS512 with the real secret',
  'embedded jwk (attacker RSA key)',
  'wrong aud (real secret)',
  'wrong iss (real secret)',
  'no exp (real secret)',
  'garbage',
];

export interface Forgery {
  label: string;
  token: string;
  /** The forgery names tenant B (X-Tenant-ID B and B's resources), not the token owner's A. */
  targetsB?: boolean;
  /** One of the essential forgeries, tried on every authenticated operation (the others on a sample). */
  core?: boolean;
}

/**
 * Every way a token must be refused. `real` is a genuine access token of A's owner (its header
 * gives the real `kid`, its claims the real `iss`/`aud`); `secret` the real HS256 secret;
 * `victim` the user id and tenant a tampered token claims.
 */
export function forgeries(opts: { real: string; secret: string; victim: { sub: string; tid: string } }): Forgery[] {
  const { real, secret, victim } = opts;
  const { header, payload } = decode(real);
  const now = Math.floor(Date.now() / 1000);
  const kid = header.kid as string;
  const base = { ...payload, iat: now, exp: now + 600 };
  const good = (p: object, h: object = header) => hmac(h, p, secret);
  const [rh, , rsig] = real.split('.');
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = attacker.publicKey.export({ format: 'jwk' });
  const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([x]) => x !== k));

  const list: Forgery[] = [
    // Expired, however well signed.
    { label: 'expired a minute ago', token: good({ ...base, iat: now - 1000, exp: now - 60 }) },
    { label: 'expired a year ago', token: good({ ...base, iat: now - 31_536_000, exp: now - 31_535_000 }) },
    { label: 'not valid before next year', token: good({ ...base, nbf: now + 31_536_000 }) },
    // Tampered claims, the real signature kept.
    {
      label: 'tampered sub/tid (B owner), signature kept',
      token: `${rh}.${b64({ ...payload, sub: victim.sub, tid: victim.tid })}.${rsig}`,
      targetsB: true,
    },
    { label: 'tampered exp, signature kept', token: `${rh}.${b64({ ...payload, exp: now + 86_400 * 365 })}.${rsig}` },
    // alg: none in its spellings, with and without a signature.
    ...['none', 'None', 'NONE', 'nOnE'].map((alg) => ({
      label: `alg ${alg}, empty signature`,
      token: `${b64({ alg, typ: 'JWT', kid })}.${b64(base)}.`,
    })),
    { label: 'alg none, no kid, no signature part', token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(base)}` },
    { label: 'alg none, real signature kept', token: `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(base)}.${rsig}` },
    {
      label: 'alg none as B owner',
      token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...base, sub: victim.sub, tid: victim.tid })}.`,
      targetsB: true,
    },
    // Key ids.
    { label: 'unknown kid (real secret)', token: good(base, { alg: 'HS256', typ: 'JWT', kid: 'attacker-key' }) },
    { label: 'kid path traversal', token: hmac({ alg: 'HS256', typ: 'JWT', kid: '../../../../dev/null' }, base, '') },
    { label: 'kid SQL injection', token: hmac({ alg: 'HS256', typ: 'JWT', kid: "x' UNION SELECT 'k" }, base, 'k') },
    // (A non-string kid signed with the real secret is a genuine token: it reads as "no kid".)
    {
      label: 'kid not a string, another secret',
      token: hmac({ alg: 'HS256', typ: 'JWT', kid: 42 }, base, 'x'.repeat(40)),
    },
    {
      label: 'kid an object, another secret',
      token: hmac({ alg: 'HS256', typ: 'JWT', kid: { $ne: '' } }, base, 'x'.repeat(40)),
    },
    // Wrong keys.
    { label: 'right kid, another secret', token: hmac(header, base, 'another-secret-another-secret-0123456789') },
    {
      label: 'no kid, another secret',
      token: hmac({ alg: 'HS256', typ: 'JWT' }, base, 'another-secret-another-secret-01234'),
    },
    { label: 'right kid, empty secret', token: hmac(header, base, '') },
    { label: 'right kid, secret "secret"', token: hmac(header, base, 'secret') },
    // The right secret under another algorithm.
    { label: 'HS512 with the real secret', token: hmac({ ...header, alg: 'HS512' }, base, secret, 'sha512') },
    { label: 'HS384 with the real secret', token: hmac({ ...header, alg: 'HS384' }, base, secret, 'sha384') },
    { label: 'RS256 header, HMAC signature', token: good(base, { ...header, alg: 'RS256' }) },
    // Attacker keys carried in the header.
    {
      label: 'embedded jwk (attacker RSA key)',
      token: rsa({ alg: 'RS256', typ: 'JWT', jwk: { ...jwk, kid: 'x' }, kid: 'x' }, base, attacker.privateKey),
    },
    {
      label: 'jku to attacker JWKS',
      token: rsa(
        { alg: 'RS256', typ: 'JWT', jku: 'https://attacker.example/jwks.json', kid },
        base,
        attacker.privateKey,
      ),
    },
    // Claims the verifier requires or pins.
    { label: 'no aud (real secret)', token: good(without('aud')) },
    { label: 'wrong aud (real secret)', token: good({ ...base, aud: 'another-api' }) },
    { label: 'no iss (real secret)', token: good(without('iss')) },
    { label: 'wrong iss (real secret)', token: good({ ...base, iss: 'attacker' }) },
    { label: 'no exp (real secret)', token: good(without('exp')) },
    { label: 'no sub (real secret)', token: good(without('sub')) },
    { label: 'sub not a string (real secret)', token: good({ ...base, sub: 1 }) },
    // Not tokens at all.
    { label: 'signature stripped', token: `${rh}.${b64(base)}.` },
    { label: 'two parts', token: `${rh}.${b64(base)}` },
    { label: 'four parts', token: `${real}.extra` },
    { label: 'garbage', token: 'not-a-jwt' },
    { label: 'not base64 JSON', token: '%%%.%%%.%%%' },
    { label: 'huge token', token: `${rh}.${b64({ ...base, pad: 'x'.repeat(12_000) })}.${rsig}` },
  ];
  const core = new Set(CORE);
  for (const f of list) if (core.has(f.label)) f.core = true;
  return list;
}
