import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';

/**
 * argon2id (the @node-rs/argon2 default) at OWASP's minimum: 19 MiB, 2 passes, 1 lane.
 * Both calls run on libuv's thread pool, never on the event loop, and at most `concurrency`
 * at once: each hash keeps a core busy, and with every pool thread hashing (a login storm) the
 * event loop got so little CPU that reads stalled (p99 ×9). Logins queue instead.
 */
const options = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Against the decoy when there is no hash (unknown email), so a miss costs as much as a hit. */
  verify(hashed: string | null | undefined, password: string): Promise<boolean>;
}

export function createPasswordHasher(concurrency: number): PasswordHasher {
  const limit = pLimit(concurrency);
  const decoy = hash('decoy password that matches nothing', options);
  return {
    hash: (password) => limit(() => hash(password, options)),
    async verify(hashed, password) {
      const target = hashed ?? (await decoy);
      const ok = await limit(() => verify(target, password).catch(() => false));
      return hashed ? ok : false;
    },
  };
}
