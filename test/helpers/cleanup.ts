import { afterAll } from 'vitest';

/**
 * Clean-ups registered as a test builds things up, run in reverse order in afterAll, each
 * even if an earlier one failed (a stopped server, a dropped database, a removed directory).
 */
export function useCleanups(): (fn: () => Promise<unknown> | unknown) => void {
  const fns: Array<() => Promise<unknown> | unknown> = [];
  afterAll(async () => {
    for (const fn of fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error('cleanup failed', err);
      }
    }
  });
  return (fn) => {
    fns.push(fn);
  };
}
