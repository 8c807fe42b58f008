import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Seals secrets stored in the database (TOTP secrets, identity-provider client secrets) with
 * AES-256-GCM under a key from the environment (SECRETS_KEY): a database dump alone reveals
 * none of them. `aad` binds a value to its row, so a sealed value copied into another row does
 * not open.
 *
 * Format `v2.<key id>.<iv>.<tag>.<ciphertext>` (base64url): the key id (a fingerprint of the
 * key, not the key) picks the key among the current one and SECRETS_PREVIOUS_KEYS, so the key
 * rotates without making anything unreadable: values under a previous key still open, and
 * `npm run secrets:reseal` rewrites them under the current one. `v1` values (no key id, before
 * rotation existed) open with whichever key authenticates them.
 */
export interface Sealer {
  seal(plaintext: string, aad: string): string;
  open(sealed: string, aad: string): string;
  /** Whether a sealed value is under the current key (else `secrets:reseal` rewrites it). */
  isCurrent(sealed: string): boolean;
}

const keyId = (key: Buffer) =>
  createHash('sha256').update('quire-sealer-key-id').update(key).digest().subarray(0, 6).toString('base64url');

function decrypt(key: Buffer, iv: string, tag: string, ct: string, aad: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
}

export function createSealer(key: Buffer, previous: readonly Buffer[] = []): Sealer {
  for (const k of [key, ...previous]) if (k.length !== 32) throw new Error('a sealing key must be 32 bytes');
  const currentId = keyId(key);
  const keys = new Map([...previous, key].map((k) => [keyId(k), k] as const));
  return {
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(aad));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v2', currentId, ...[iv, cipher.getAuthTag(), ct].map((p) => p.toString('base64url'))].join('.');
    },
    open(sealed, aad) {
      const parts = sealed.split('.');
      if (parts[0] === 'v2' && parts.length === 5) {
        const [, id, iv, tag, ct] = parts as [string, string, string, string, string];
        const k = keys.get(id);
        if (!k) throw new Error('sealed under a key that is neither SECRETS_KEY nor in SECRETS_PREVIOUS_KEYS');
        return decrypt(k, iv, tag, ct, aad);
      }
      if (parts[0] === 'v1' && parts.length === 4) {
        const [, iv, tag, ct] = parts as [string, string, string, string];
        let failure: unknown;
        for (const k of [key, ...previous]) {
          try {
            return decrypt(k, iv, tag, ct, aad);
          } catch (err) {
            failure = err;
          }
        }
        throw failure;
      }
      throw new Error('not a sealed value');
    },
    isCurrent: (sealed) => sealed.startsWith(`v2.${currentId}.`),
  };
}

/** Outside production without SECRETS_KEY: a key derived from the signing secret (HKDF-SHA256). */
export const deriveSealingKey = (material: string): Buffer =>
  Buffer.from(hkdfSync('sha256', material, 'quire', 'secrets-key v1', 32));

export interface ResealReport {
  /** Values rewritten under the current key. */
  resealed: number;
  /** Values under a key this server does not have (nor in SECRETS_PREVIOUS_KEYS): left as they are. */
  unreadable: number;
}

/**
 * Rewrites, page by page, every sealed value not under the current key. `write` replaces a value
 * only if it is still the one read (a concurrent change wins) and says whether it did.
 */
export async function resealAll<Row extends { id: string; sealed: string }>(
  sealer: Sealer,
  source: {
    page(after: string | null, limit: number): Promise<Row[]>;
    aad(row: Row): string;
    write(row: Row, next: string): Promise<boolean>;
  },
): Promise<ResealReport> {
  const report: ResealReport = { resealed: 0, unreadable: 0 };
  const limit = 500;
  for (let after: string | null = null; ; ) {
    const rows = await source.page(after, limit);
    for (const row of rows) {
      if (sealer.isCurrent(row.sealed)) continue;
      let plain: string;
      try {
        plain = sealer.open(row.sealed, source.aad(row));
      } catch {
        report.unreadable++;
        continue;
      }
      if (await source.write(row, sealer.seal(plain, source.aad(row)))) report.resealed++;
    }
    if (rows.length < limit) return report;
    after = rows[rows.length - 1]!.id;
  }
}
