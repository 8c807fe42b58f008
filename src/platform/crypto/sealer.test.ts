import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSealer, resealAll } from './sealer.js';

const key = () => randomBytes(32);

/** A value in the first format (no key id), as sealers before key rotation wrote it. */
function sealV1(k: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', k, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', ...[iv, cipher.getAuthTag(), ct].map((p) => p.toString('base64url'))].join('.');
}

describe('sealer', () => {
  it('round-trips, names its key by a fingerprint (never the key), and binds a value to its aad', () => {
    const k = key();
    const sealer = createSealer(k);
    const sealed = sealer.seal('JBSWY3DPEHPK3PXP', 'totp:user-1');
    expect(sealed).toMatch(/^v2\.[\w-]{8}\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(sealed).not.toContain(k.toString('base64url').slice(0, 8));
    expect(sealer.open(sealed, 'totp:user-1')).toBe('JBSWY3DPEHPK3PXP');
    expect(() => sealer.open(sealed, 'totp:user-2')).toThrow();
    // Same plaintext, fresh IV: never the same sealed value twice.
    expect(sealer.seal('JBSWY3DPEHPK3PXP', 'totp:user-1')).not.toBe(sealed);
    expect(sealer.isCurrent(sealed)).toBe(true);
  });

  it('a tampered value does not open', () => {
    const sealer = createSealer(key());
    const parts = sealer.seal('secret', 'a').split('.');
    const ct = Buffer.from(parts[4]!, 'base64url');
    ct[0]! ^= 1;
    parts[4] = ct.toString('base64url');
    expect(() => sealer.open(parts.join('.'), 'a')).toThrow();
    expect(() => sealer.open('v2.nope', 'a')).toThrow('not a sealed value');
    expect(() => sealer.open('plain text', 'a')).toThrow('not a sealed value');
  });

  it('rotation: values under a previous key open and are not current; without that key they do not open', () => {
    const [a, b, c] = [key(), key(), key()];
    const old = createSealer(a).seal('client-secret', 'sso-client-secret:t1');
    const rotated = createSealer(b, [a]);
    expect(rotated.open(old, 'sso-client-secret:t1')).toBe('client-secret');
    expect(rotated.isCurrent(old)).toBe(false);
    expect(rotated.isCurrent(rotated.seal('x', 'y'))).toBe(true);
    expect(() => createSealer(b).open(old, 'sso-client-secret:t1')).toThrow(/SECRETS_PREVIOUS_KEYS/);
    expect(() => createSealer(c, [b]).open(old, 'sso-client-secret:t1')).toThrow(/SECRETS_PREVIOUS_KEYS/);
  });

  it('opens first-format values (no key id) under the current or a previous key; they are never current', () => {
    const [a, b] = [key(), key()];
    const v1 = sealV1(a, 'legacy', 'totp:u');
    expect(createSealer(a).open(v1, 'totp:u')).toBe('legacy');
    expect(createSealer(b, [a]).open(v1, 'totp:u')).toBe('legacy');
    expect(createSealer(a).isCurrent(v1)).toBe(false);
    expect(() => createSealer(b).open(v1, 'totp:u')).toThrow();
  });

  it('refuses keys that are not 32 bytes, current or previous', () => {
    expect(() => createSealer(randomBytes(16))).toThrow('32 bytes');
    expect(() => createSealer(key(), [randomBytes(31)])).toThrow('32 bytes');
  });

  it('resealAll rewrites what is not current, page by page; counts what no key opens; leaves a value changed meanwhile', async () => {
    const [a, b, stranger] = [key(), key(), key()];
    const sealer = createSealer(b, [a]);
    const rows = new Map<string, string>();
    const ids = Array.from({ length: 1203 }, (_, i) => `id-${String(i).padStart(5, '0')}`);
    for (const [i, id] of ids.entries()) {
      const k = i % 3 === 0 ? b : i % 100 === 1 ? stranger : a;
      rows.set(id, createSealer(k).seal(`secret-${id}`, `aad:${id}`));
    }
    const pages: number[] = [];
    const report = await resealAll(sealer, {
      page: async (after, limit) => {
        const page = ids
          .filter((id) => after === null || id > after)
          .slice(0, limit)
          .map((id) => ({ id, sealed: rows.get(id)! }));
        pages.push(page.length);
        return page;
      },
      aad: (row) => `aad:${row.id}`,
      write: async (row, next) => {
        // Someone changed this one meanwhile: the write must not clobber it.
        if (row.id === 'id-00002') return false;
        if (rows.get(row.id) !== row.sealed) return false;
        rows.set(row.id, next);
        return true;
      },
    });
    const strangers = ids.filter((_, i) => i % 3 !== 0 && i % 100 === 1).length;
    const underA = ids.filter((_, i) => i % 3 !== 0 && i % 100 !== 1).length;
    expect(pages).toEqual([500, 500, 203]);
    expect(report).toEqual({ resealed: underA - 1, unreadable: strangers });
    for (const [i, id] of ids.entries()) {
      const v = rows.get(id)!;
      if (i % 3 !== 0 && i % 100 === 1) {
        expect(sealer.isCurrent(v)).toBe(false);
        continue;
      }
      if (id !== 'id-00002') expect(createSealer(b).open(v, `aad:${id}`)).toBe(`secret-${id}`);
    }
  });
});
