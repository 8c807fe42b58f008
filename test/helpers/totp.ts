import type { FastifyInstance } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { PASSWORD, type TestUser } from './factories.js';
import { sleep } from './wait.js';

/**
 * The server accepts a code for the current 30-second step or one either side, and each step
 * once: a later sign-in needs a later step. `nextCode` hands out, per authenticator, the earliest
 * step the server will still take (the previous one, then the current one, then the next), so a
 * test can use two codes without waiting (three, when the step has more than ten seconds left).
 *
 * Codes are computed here with `otpauth` from the secret the API hands out, as an authenticator
 * app would.
 */
export const STEP_MS = 30_000;

export interface Authenticator {
  secret: string;
  totp: TOTP;
  /** The last step this test had the server accept (or -1). */
  last: number;
}

export const authenticator = (secret: string): Authenticator => ({
  secret,
  totp: new TOTP({ secret: Secret.fromBase32(secret), period: 30 }),
  last: -1,
});
export const currentStep = () => Math.floor(Date.now() / STEP_MS);
export const codeAt = (a: Authenticator, step: number) => a.totp.generate({ timestamp: step * STEP_MS });

/** A code for the earliest step after the last one used that the server still accepts (waits if none is). */
export async function nextCode(a: Authenticator): Promise<string> {
  for (;;) {
    const now = Date.now();
    const cur = Math.floor(now / STEP_MS);
    // The previous step only while it stays in the window for a while yet (slow machines).
    const earliest = (cur + 1) * STEP_MS - now > 10_000 ? cur - 1 : cur;
    const step = Math.max(a.last + 1, earliest);
    if (step <= cur + 1) {
      a.last = step;
      return codeAt(a, step);
    }
    await sleep((cur + 1) * STEP_MS - now + 50);
  }
}

/** Six digits that no step in or near the window gives. */
export function wrongCode(a: Authenticator): string {
  const cur = currentStep();
  const near = new Set([-2, -1, 0, 1, 2].map((d) => codeAt(a, cur + d)));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

/**
 * Turns TOTP on for a signed-in user over the API (enrol with the password, confirm with a first
 * code) and hands back their authenticator. Confirming ends their other sessions, not this one.
 */
export async function enableTotp(
  app: FastifyInstance,
  user: Pick<TestUser, 'auth'>,
  /** The account's password (undefined for an account that signs in only through a provider). */
  password: string | undefined = PASSWORD,
): Promise<Authenticator> {
  const enrolled = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/mfa/totp/enroll',
    headers: user.auth,
    payload: password === undefined ? {} : { password },
  });
  if (enrolled.statusCode !== 200) throw new Error(`enrol failed: ${enrolled.statusCode} ${enrolled.body}`);
  const a = authenticator(enrolled.json().data.secret);
  const confirmed = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/mfa/totp/confirm',
    headers: user.auth,
    payload: { code: await nextCode(a) },
  });
  if (confirmed.statusCode !== 200) throw new Error(`confirm failed: ${confirmed.statusCode} ${confirmed.body}`);
  return a;
}
