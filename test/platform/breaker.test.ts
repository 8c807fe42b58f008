import { afterEach, describe, expect, it } from 'vitest';
import { RetryLaterError } from '../../src/platform/queue/index.js';
import { type Breaker, createBreaker } from '../../src/platform/resilience/breaker.js';

/**
 * The circuit breaker around outbound calls, driven by a real action whose behaviour the test
 * switches (fail, succeed, hang). No fake timers: opossum's own reset timer runs; the test waits
 * for the state it expects and asserts order and call counts, never how fast anything was.
 */
type State = 'open' | 'half-open' | 'closed';

class Dependency {
  mode: 'fail' | 'ok' | 'hang' = 'fail';
  calls = 0;
  private hung: (() => void)[] = [];
  async call(n: number): Promise<string> {
    this.calls++;
    if (this.mode === 'fail') throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    if (this.mode === 'hang') {
      await new Promise<void>((resolve) => this.hung.push(resolve));
      return `late ${n}`;
    }
    return `ok ${n}`;
  }
  release() {
    for (const r of this.hung.splice(0)) r();
  }
}

const breakers: Breaker<[number], string>[] = [];
const deps: Dependency[] = [];
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
  for (const d of deps.splice(0)) d.release();
});

function setup(opts: { resetMs?: number; timeoutMs?: number; volumeThreshold?: number } = {}) {
  const dep = new Dependency();
  const transitions: { name: string; state: State }[] = [];
  const breaker = createBreaker((n: number) => dep.call(n), {
    name: 'smtp',
    timeoutMs: opts.timeoutMs ?? 5_000,
    resetMs: opts.resetMs ?? 200,
    volumeThreshold: opts.volumeThreshold ?? 3,
    onStateChange: (name, state) => transitions.push({ name, state }),
  });
  breakers.push(breaker);
  deps.push(dep);
  return { dep, breaker, transitions, states: () => transitions.map((t) => t.state) };
}

async function waitFor(what: string, check: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the call to reject');
}

describe('createBreaker', () => {
  it('passes results and errors through while closed and below the volume threshold', async () => {
    const { dep, breaker } = setup();
    dep.mode = 'ok';
    await expect(breaker.call(1)).resolves.toBe('ok 1');
    dep.mode = 'fail';
    const err = await rejection(breaker.call(2));
    // A real failure is the dependency's own error (the job spends an attempt), not "retry later".
    expect(err).not.toBeInstanceOf(RetryLaterError);
    expect(err.code).toBe('ECONNREFUSED');
    expect(breaker.state).toBe('closed');
  });

  it('opens after enough failures; then calls throw RetryLaterError without calling the action', async () => {
    const { dep, breaker, transitions } = setup({ resetMs: 60_000 });
    const first = await rejection(breaker.call(1));
    const second = await rejection(breaker.call(2));
    expect([first.code, second.code]).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(breaker.state).toBe('closed');

    // The third failure reaches the volume threshold with a 100 % error rate: the circuit opens,
    // and the call that opened it is already "retry later" (it should not spend a job attempt).
    const third = await rejection(breaker.call(3));
    expect(breaker.state).toBe('open');
    expect(third).toBeInstanceOf(RetryLaterError);
    expect(transitions).toEqual([{ name: 'smtp', state: 'open' }]);

    const callsWhenOpened = dep.calls;
    dep.mode = 'ok'; // the dependency has recovered, but the open circuit does not ask it
    for (let i = 0; i < 5; i++) {
      const err = await rejection(breaker.call(10 + i));
      expect(err).toBeInstanceOf(RetryLaterError);
      expect((err as RetryLaterError).delayMs).toBe(60_000);
      expect(err.message).toMatch(/smtp is unavailable \(circuit open\)/);
    }
    expect(dep.calls).toBe(callsWhenOpened);
    expect(breaker.state).toBe('open');
  });

  it('opens on a run of failures even when the rolling window is full of earlier successes', async () => {
    // A dependency that goes down mid-traffic: 30 successes, then nothing but failures. By error
    // rate alone (50 % of the window) the circuit would open only after 31 failures, each of
    // them a job attempt spent; it must open after `volumeThreshold` failures in a row.
    const { dep, breaker, states } = setup({ resetMs: 60_000 });
    dep.mode = 'ok';
    for (let i = 0; i < 30; i++) await breaker.call(i);
    dep.mode = 'fail';
    const errs = [];
    for (let i = 0; i < 3; i++) errs.push(await rejection(breaker.call(i)));
    expect(errs.map((e) => e instanceof RetryLaterError)).toEqual([false, false, true]);
    expect(breaker.state).toBe('open');
    expect(states()).toEqual(['open']);
  });

  it('a success in between ends the run: failures that are not in a row stay below the error rate', async () => {
    const { dep, breaker } = setup({ resetMs: 60_000 });
    dep.mode = 'ok';
    for (let i = 0; i < 30; i++) await breaker.call(i);
    for (let round = 0; round < 3; round++) {
      dep.mode = 'fail';
      await rejection(breaker.call(1));
      await rejection(breaker.call(2));
      dep.mode = 'ok';
      await breaker.call(3);
    }
    expect(breaker.state).toBe('closed');
  });

  it('after resetMs goes half-open; a success there closes it', async () => {
    const { dep, breaker, states } = setup({ resetMs: 300 });
    for (let i = 0; i < 3; i++) await rejection(breaker.call(i));
    expect(breaker.state).toBe('open');
    // Still open right after opening (the reset timer has not run), and it fails fast.
    await expect(breaker.call(99)).rejects.toBeInstanceOf(RetryLaterError);
    expect(breaker.state).toBe('open');

    await waitFor('half-open', () => breaker.state === 'half-open');
    expect(states()).toEqual(['open', 'half-open']);
    dep.mode = 'ok';
    const before = dep.calls;
    await expect(breaker.call(7)).resolves.toBe('ok 7');
    expect(dep.calls).toBe(before + 1);
    expect(breaker.state).toBe('closed');
    expect(states()).toEqual(['open', 'half-open', 'closed']);
    await expect(breaker.call(8)).resolves.toBe('ok 8');
  });

  it('half-open lets one trial call through; other calls meanwhile are turned away', async () => {
    const { dep, breaker, states } = setup({ resetMs: 300 });
    for (let i = 0; i < 3; i++) await rejection(breaker.call(i));
    await waitFor('half-open', () => breaker.state === 'half-open');

    dep.mode = 'hang';
    const before = dep.calls;
    const trial = breaker.call(1);
    const others = await Promise.all([2, 3, 4].map((n) => rejection(breaker.call(n))));
    for (const err of others) expect(err).toBeInstanceOf(RetryLaterError);
    expect(dep.calls).toBe(before + 1);
    expect(breaker.state).toBe('half-open');

    dep.release();
    await expect(trial).resolves.toBe('late 1');
    expect(breaker.state).toBe('closed');
    expect(states()).toEqual(['open', 'half-open', 'closed']);
  });

  it('a failed trial in half-open opens the circuit again at once (the caller retries later)', async () => {
    const { dep, breaker, states } = setup({ resetMs: 300 });
    for (let i = 0; i < 3; i++) await rejection(breaker.call(i));
    await waitFor('half-open', () => breaker.state === 'half-open');
    const before = dep.calls;
    const err = await rejection(breaker.call(5));
    expect(dep.calls).toBe(before + 1);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect(breaker.state).toBe('open');
    expect(states()).toEqual(['open', 'half-open', 'open']);

    // The next reset period gives it another trial, which succeeds this time.
    await waitFor('half-open again', () => breaker.state === 'half-open');
    dep.mode = 'ok';
    await expect(breaker.call(6)).resolves.toBe('ok 6');
    expect(states()).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('a slow action times out after timeoutMs and counts as a failure', async () => {
    const { dep, breaker, states } = setup({ timeoutMs: 100, resetMs: 60_000 });
    dep.mode = 'hang';
    const first = await rejection(breaker.call(1));
    expect(first).not.toBeInstanceOf(RetryLaterError);
    expect(first.code).toBe('ETIMEDOUT');
    expect(first.message).toMatch(/Timed out after 100ms/);
    expect(breaker.state).toBe('closed');
    await rejection(breaker.call(2));
    // Third timeout: the volume threshold is met with every call failed, so the circuit opens.
    const third = await rejection(breaker.call(3));
    expect(third).toBeInstanceOf(RetryLaterError);
    expect(breaker.state).toBe('open');
    expect(states()).toEqual(['open']);
    expect(dep.calls).toBe(3);
  });

  it('reports open, half-open and closed through onStateChange, with the breaker name', async () => {
    const { dep, breaker, transitions } = setup({ resetMs: 200 });
    for (let i = 0; i < 3; i++) await rejection(breaker.call(i));
    await waitFor('half-open', () => breaker.state === 'half-open');
    dep.mode = 'ok';
    await breaker.call(1);
    expect(transitions).toEqual([
      { name: 'smtp', state: 'open' },
      { name: 'smtp', state: 'half-open' },
      { name: 'smtp', state: 'closed' },
    ]);
  });
});
