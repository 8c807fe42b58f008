import CircuitBreaker from 'opossum';
import { RetryLaterError } from '../queue/index.js';

export interface BreakerOptions {
  name: string;
  timeoutMs: number;
  resetMs: number;
  /** Calls in the rolling window before the error rate can open the circuit. */
  volumeThreshold?: number;
  errorThresholdPercentage?: number;
  /**
   * Failures in a row that open the circuit whatever the error rate (default: volumeThreshold).
   * The rate alone reacts late to a dependency that goes down in the middle of steady traffic:
   * the window's earlier successes keep the rate under the threshold while callers spend their
   * retries on a dependency that is gone.
   */
  consecutiveFailures?: number;
  /**
   * Errors that say nothing about the dependency's health (a recipient the mail server
   * rejects): they fail the call but do not count towards opening the circuit.
   */
  isCallerError?: (err: unknown) => boolean;
  onStateChange?: (name: string, state: 'open' | 'half-open' | 'closed') => void;
}

export interface Breaker<A extends unknown[], R> {
  /** Calls through the breaker. While it is open, throws RetryLaterError (the job backs off). */
  call(...args: A): Promise<R>;
  readonly state: 'open' | 'half-open' | 'closed';
  shutdown(): void;
}

/**
 * Every outbound call (SMTP, webhooks) goes through one of these: a timeout per call, and after
 * enough failures the circuit opens and calls fail fast for `resetMs`, sparing the dependency
 * and our workers. A job that meets an open circuit is put back for later, not failed.
 */
export function createBreaker<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  opts: BreakerOptions,
): Breaker<A, R> {
  const breaker = new CircuitBreaker(action, {
    name: opts.name,
    timeout: opts.timeoutMs,
    resetTimeout: opts.resetMs,
    volumeThreshold: opts.volumeThreshold ?? 3,
    errorThresholdPercentage: opts.errorThresholdPercentage ?? 50,
    rollingCountTimeout: 30_000,
    errorFilter: opts.isCallerError,
  });
  // Opens on a run of failures too (see `consecutiveFailures`). A 'failure' listener runs inside
  // opossum's own failure handling, before the caller's promise rejects, so the call that
  // completes the run already sees an open circuit (and becomes RetryLaterError below).
  const runToOpen = opts.consecutiveFailures ?? opts.volumeThreshold ?? 3;
  let failuresInARow = 0;
  breaker.on('success', () => {
    failuresInARow = 0;
  });
  breaker.on('failure', () => {
    failuresInARow++;
    if (failuresInARow >= runToOpen && breaker.closed) breaker.open();
  });
  breaker.on('close', () => {
    failuresInARow = 0;
  });
  breaker.on('open', () => opts.onStateChange?.(opts.name, 'open'));
  breaker.on('halfOpen', () => opts.onStateChange?.(opts.name, 'half-open'));
  breaker.on('close', () => opts.onStateChange?.(opts.name, 'closed'));
  return {
    async call(...args: A) {
      try {
        return await breaker.fire(...args);
      } catch (err) {
        if (breaker.opened || (err as { code?: string }).code === 'EOPENBREAKER') {
          throw new RetryLaterError(`${opts.name} is unavailable (circuit open)`, opts.resetMs);
        }
        throw err;
      }
    },
    get state() {
      return breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed';
    },
    shutdown: () => breaker.shutdown(),
  };
}
