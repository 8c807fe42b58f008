import { setTimeout as sleep } from 'node:timers/promises';
import type { Credentials } from './api.js';
import { type Background, type BackgroundSample, onStopLoad, percentile } from './load.js';

/** Sign-ins kept in flight by the login storm. */
export const STORM_IN_FLIGHT = 100;
/** How long the storm runs before the measured window at the least (it overlaps the warm-up). */
const LEAD_MS = 1_000;
/** A sign-in not answered within this is counted as failed (and abandoned). */
const TIMEOUT_MS = 30_000;

/**
 * A login storm: `inFlight` loops, each sending `POST /api/v1/auth/login` with correct
 * credentials (cycling through `users`) and the next one as soon as the answer is in, so
 * exactly `inFlight` sign-ins are in flight from start to stop. Plain `fetch` (one keep-alive
 * connection per loop) rather than autocannon, so that `stop()` can wait for the sign-ins in
 * flight: the server keeps hashing a request whose connection was cut, which would load the
 * next case.
 */
export function loginStorm(origin: string, users: Credentials[], inFlight = STORM_IN_FLIGHT): Background {
  if (users.length === 0) throw new Error('login storm: no users');
  const bodies = users.map(({ email, password }) => JSON.stringify({ email, password }));
  const abort = new AbortController();
  const startedAt = performance.now();
  const done: Array<{ at: number; ms: number }> = [];
  const statusCodes: Record<string, number> = {};
  let failed = 0;
  let stopping = false;
  let windowStart = Number.NaN;
  let windowEnd = Number.NaN;
  let sent = 0;

  async function loop() {
    while (!stopping) {
      const body = bodies[sent++ % bodies.length]!;
      const t0 = performance.now();
      try {
        const res = await fetch(`${origin}/api/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.any([abort.signal, AbortSignal.timeout(TIMEOUT_MS)]),
        });
        await res.arrayBuffer();
        const at = performance.now();
        statusCodes[res.status] = (statusCodes[res.status] ?? 0) + 1;
        if (res.status === 200) done.push({ at, ms: at - t0 });
        else failed++;
      } catch {
        if (abort.signal.aborted) return;
        failed++;
        await sleep(10); // a refused connection fails at once: do not spin
      }
    }
  }
  const loops = Array.from({ length: inFlight }, loop);
  const unregister = onStopLoad(() => {
    stopping = true;
    abort.abort();
  });

  return {
    async ready() {
      const wait = LEAD_MS - (performance.now() - startedAt);
      if (wait > 0) await sleep(wait);
    },
    begin() {
      windowStart = performance.now();
    },
    end() {
      windowEnd = performance.now();
    },
    async stop(): Promise<BackgroundSample> {
      stopping = true;
      if (Number.isNaN(windowEnd)) windowEnd = performance.now();
      await Promise.all(loops);
      unregister();
      const inWindow = done.filter((d) => d.at >= windowStart && d.at <= windowEnd);
      const sorted = Float64Array.from(inWindow.map((d) => d.ms)).sort();
      const seconds = (windowEnd - windowStart) / 1000;
      return {
        what: 'POST /api/v1/auth/login',
        inFlight,
        perSec: seconds > 0 ? inWindow.length / seconds : Number.NaN,
        ok: inWindow.length,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        failed,
        statusCodes,
      };
    },
  };
}
