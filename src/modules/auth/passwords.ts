import { hash, verify } from '@node-rs/argon2';

/**
 * argon2id (the @node-rs/argon2 default) at OWASP's minimum: 19 MiB, 2 passes, 1 lane.
 * Both calls run on libuv's thread pool, never on the event loop.
 */
const options = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const hashPassword = (password: string): Promise<string> => hash(password, options);

// Verified against when the email is unknown, so a miss costs as much as a hit.
const decoy = hash('decoy password that matches nothing', options);

export async function verifyPassword(hashed: string | undefined, password: string): Promise<boolean> {
  if (!hashed) {
    await verify(await decoy, password).catch(() => false);
    return false;
  }
  return verify(hashed, password).catch(() => false);
}
