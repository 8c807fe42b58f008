import autocannon, { type Instance, type RequestSpec } from 'autocannon';

/** One benchmark case: a request (or a request factory) against one server. */
export interface Case {
  name: string;
  /** e.g. `GET /api/v1/posts?limit=20`. */
  label: string;
  /** Base URL of the server, e.g. `http://127.0.0.1:4000`. */
  origin: string;
  path: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** A fresh body per request (e.g. a unique title); implies `content-type: application/json`. */
  body?: () => string;
  /**
   * The status that counts as served when it is not a 2xx (e.g. 304 for a revalidation):
   * throughput and latencies are then of that status; any other status is a failure.
   */
  expectStatus?: number;
  /** Runs after each measurement of this case (e.g. to undo what a write case added). */
  after?: () => Promise<void>;
  /**
   * A second load run beside this one (e.g. a login storm): started before the warm-up, its
   * measured window marked around the measurement, stopped (and drained) after it.
   */
  background?: () => Background;
}

/** A load running beside a case's own (see `Case.background`). */
export interface Background {
  /** Resolves once the load has been running for its lead time (so it is in full swing). */
  ready(): Promise<void>;
  /** The measured window starts now. */
  begin(): void;
  /** The measured window ends now. */
  end(): void;
  /** Stops sending, waits for the requests in flight, and reports on the measured window. */
  stop(): Promise<BackgroundSample>;
}

/** What a background load did during the measured window. Latencies in milliseconds. */
export interface BackgroundSample {
  /** e.g. `POST /api/v1/auth/login`. */
  what: string;
  /** Requests kept in flight. */
  inFlight: number;
  /** Successful responses completed within the window, per second of it. */
  perSec: number;
  ok: number;
  p50: number;
  p99: number;
  /** Failed requests (other statuses, socket errors, timeouts) over the whole run, warm-up included. */
  failed: number;
  statusCodes: Record<string, number>;
}

/**
 * One timed run of one case. Latencies in milliseconds, from our own sub-millisecond timings.
 * `ok` counts served responses (2xx, or the case's `expectStatus`), `non2xx` every other status.
 */
export interface Sample {
  reqPerSec: number;
  p50: number;
  p99: number;
  /** autocannon's own (whole-millisecond) percentiles, for reference. */
  autocannonP50: number;
  autocannonP99: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
  statusCodes: Record<string, number>;
  /** CPU time per completed request, in microseconds: the server process, and its PostgreSQL backends. */
  cpuUsPerReq?: { server: number | null; db: number | null };
  /** The case's background load during this measurement, if it has one. */
  background?: BackgroundSample;
}

export interface LoadOptions {
  durationS: number;
  connections: number;
}

let active: Instance | undefined;
const stoppers = new Set<() => void>();

/**
 * Stops the run in progress, if any, and every background load (SIGINT). autocannon then
 * resolves with what it has.
 */
export function stopActiveLoad(): void {
  active?.stop();
  for (const stop of stoppers) stop();
}

/** Registers a background load's emergency stop with `stopActiveLoad`; returns the unregister. */
export function onStopLoad(stop: () => void): () => void {
  stoppers.add(stop);
  return () => void stoppers.delete(stop);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Loads one case for `durationS` seconds with `connections` keep-alive connections (no
 * pipelining) and returns throughput (2xx per second) and latency percentiles of 2xx responses.
 * Bounded: autocannon stops by itself when the duration is up.
 */
export async function runLoad(c: Case, opts: LoadOptions): Promise<Sample> {
  const headers = { ...c.headers, ...(c.body && { 'content-type': 'application/json' }) };
  const makeBody = c.body;
  const request: RequestSpec = { method: c.method ?? 'GET', path: c.path, headers };
  if (makeBody) request.setupRequest = (req) => ({ ...req, body: makeBody() });

  const latencies: number[] = [];
  const served = (status: number) =>
    c.expectStatus === undefined ? status >= 200 && status < 300 : status === c.expectStatus;
  let expected = 0;
  const instance = autocannon({
    url: c.origin,
    connections: opts.connections,
    duration: opts.durationS,
    timeout: 10,
    requests: [request],
  });
  active = instance;
  instance.on('response', (_client, status, _bytes, ms) => {
    if (!served(status)) return;
    latencies.push(ms);
    expected++;
  });
  try {
    const r = await instance;
    const sorted = Float64Array.from(latencies).sort();
    const durationS = r.duration > 0 ? r.duration : opts.durationS;
    // A non-2xx expected status: autocannon counts it among non2xx; here it is the served count.
    const ok = c.expectStatus === undefined ? r['2xx'] : expected;
    const non2xx = c.expectStatus === undefined ? r.non2xx : Math.max(0, r['2xx'] + r.non2xx - expected);
    return {
      reqPerSec: ok / durationS,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      autocannonP50: r.latency.p50,
      autocannonP99: r.latency.p99,
      ok,
      non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      durationS,
      statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
    };
  } finally {
    active = undefined;
  }
}

/** Median of each figure across rounds (each figure on its own, as is usual for noisy machines). */
export function summarize(samples: Sample[]) {
  return {
    reqPerSec: median(samples.map((s) => s.reqPerSec)),
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    serverCpuUs: median(samples.map((s) => s.cpuUsPerReq?.server ?? Number.NaN)),
    dbCpuUs: median(samples.map((s) => s.cpuUsPerReq?.db ?? Number.NaN)),
    failures: samples.reduce((n, s) => n + s.non2xx + s.errors + s.timeouts, 0),
  };
}
