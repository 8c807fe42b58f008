import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { median, type Sample, type summarize } from './load.js';

export interface CaseResult {
  name: string;
  label: string;
  rounds: Sample[];
  median: ReturnType<typeof summarize>;
  /** req/s of this case divided by each baseline's (medians of the same run). */
  ratios: { hello: number; rawPg: number };
  /** req/s over that of the case's own baseline (`BenchCase.baseline`), if it has one. */
  baseline: { name: string; ratio: number } | null;
}

const MiB = 1024 * 1024;
export const mib = (bytes: number | null) => (bytes === null ? 'n/a' : `${Math.round(bytes / MiB)} MiB`);

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

/**
 * The results table: medians across rounds, ratios of req/s to both baselines, CPU time per
 * request of the server process and of its PostgreSQL backends, and failed requests.
 */
export function formatTable(results: CaseResult[]): string {
  const rows = results.map((r) => [
    r.name,
    r.label,
    fixed(r.median.reqPerSec, 0),
    fixed(r.median.p50, 2),
    fixed(r.median.p99, 2),
    fixed(r.ratios.hello, 2),
    fixed(r.ratios.rawPg, 2),
    fixed(r.median.serverCpuUs, 0),
    fixed(r.median.dbCpuUs, 0),
    r.baseline ? `${fixed(r.baseline.ratio, 2)} ${r.baseline.name}` : '',
    String(r.median.failures),
  ]);
  const head = ['case', 'request', 'req/s', 'p50 ms', 'p99 ms', '×hello', '×raw-pg', 'node µs/req', 'pg µs/req'];
  return table([...head, '× own baseline', 'failed'], rows);
}

/** Per-round req/s, to show how much the machine wandered during the run. */
export function formatRounds(results: CaseResult[]): string {
  const rounds = Math.max(...results.map((r) => r.rounds.length));
  const head = ['case', 'request', ...Array.from({ length: rounds }, (_, i) => `round ${i + 1}`)];
  const rows = results.map((r) => [
    r.name,
    r.label,
    ...Array.from({ length: rounds }, (_, i) => fixed(r.rounds[i]?.reqPerSec ?? Number.NaN, 0)),
  ]);
  return table(head, rows);
}

/**
 * The goal: authenticated list req/s over the raw ceiling's (medians), with the same ratio
 * within each round to show the spread, and the ratio of CPU per request (node + PostgreSQL),
 * which a busy machine disturbs less than throughput.
 */
export function verdict(results: CaseResult[], goal: number) {
  const list = results.find((r) => r.name === 'list');
  const raw = results.find((r) => r.name === 'raw-pg');
  if (!list || !raw) return { lines: [], summary: null };
  const ratio = list.ratios.rawPg;
  const perRound = list.rounds.map((s, i) => s.reqPerSec / (raw.rounds[i]?.reqPerSec ?? Number.NaN));
  const cpu = (r: CaseResult) => r.median.serverCpuUs + r.median.dbCpuUs;
  const cpuRatio = cpu(raw) / cpu(list);
  const met = ratio >= goal;
  const lines = [
    `authenticated list / raw ceiling = ${fixed(ratio, 2)} (goal ≥ ${fixed(goal, 2)}): ${met ? 'met' : 'NOT met'}` +
      ` (within each round: ${perRound.map((r) => fixed(r, 2)).join(', ')})`,
  ];
  if (Number.isFinite(cpuRatio)) {
    lines.push(`CPU per request (node + pg), raw ceiling / authenticated list = ${fixed(cpuRatio, 2)}`);
  }
  return { lines, summary: { listOverRawPg: ratio, perRound, cpuRawOverList: cpuRatio, target: goal, met } };
}

/** A ratio of one case to another, read as a goal (`min` or `max`) or only reported. */
export interface RatioSpec {
  label: string;
  case: string;
  over: string;
  /** `reqPerSec` (default): throughput over the other's; `p50`, `p99`: latency over the other's. */
  metric?: 'reqPerSec' | 'p50' | 'p99';
  min?: number;
  max?: number;
}

/**
 * One line per ratio whose two cases ran: the ratio of the medians, the verdict when it is a
 * goal, and the same ratio within each round (the two cases run seconds apart).
 */
export function ratioLines(results: CaseResult[], specs: RatioSpec[]) {
  const lines: string[] = [];
  const summary: Array<RatioSpec & { ratio: number; perRound: number[]; met: boolean | null }> = [];
  for (const spec of specs) {
    const a = results.find((r) => r.name === spec.case);
    const b = results.find((r) => r.name === spec.over);
    if (!a || !b) continue;
    const metric = spec.metric ?? 'reqPerSec';
    const ratio = a.median[metric] / b.median[metric];
    const perRound = a.rounds.map((s, i) => s[metric] / (b.rounds[i]?.[metric] ?? Number.NaN));
    const met =
      spec.min !== undefined
        ? ratio >= spec.min
        : spec.max !== undefined
          ? ratio <= spec.max
          : (null as boolean | null);
    const goal =
      spec.min !== undefined
        ? ` (goal ≥ ${fixed(spec.min, 2)}): ${met ? 'met' : 'NOT met'}`
        : spec.max !== undefined
          ? ` (goal ≤ ${fixed(spec.max, 2)}): ${met ? 'met' : 'NOT met'}`
          : '';
    // Three decimals where two would print the goal itself on the wrong side of it (0.398 as 0.40).
    const target = spec.min ?? spec.max;
    const digits = target !== undefined && fixed(ratio, 2) === fixed(target, 2) && ratio !== target ? 3 : 2;
    lines.push(
      `${spec.label} = ${fixed(ratio, digits)}${goal} (within each round: ${perRound.map((r) => fixed(r, 2)).join(', ')})`,
    );
    summary.push({ ...spec, ratio, perRound, met });
  }
  return { lines, summary };
}

/**
 * A case's background load (e.g. the login storm), medians across rounds: requests in flight,
 * successful requests per second of the measured window (and within each round), their latency,
 * and failures over every round.
 */
export function backgroundLines(results: CaseResult[], name: string, label: string, unit: string) {
  const r = results.find((x) => x.name === name);
  const samples = r?.rounds.map((s) => s.background).filter((b) => b !== undefined) ?? [];
  if (!samples.length) return { lines: [], summary: null };
  const summary = {
    what: samples[0]!.what,
    inFlight: samples[0]!.inFlight,
    perSec: median(samples.map((b) => b.perSec)),
    perRound: samples.map((b) => b.perSec),
    p50: median(samples.map((b) => b.p50)),
    p99: median(samples.map((b) => b.p99)),
    failed: samples.reduce((n, b) => n + b.failed, 0),
  };
  const lines = [
    `${label}: ${fixed(summary.perSec, 0)} ${unit}/s with ${summary.inFlight} in flight` +
      ` (within each round: ${summary.perRound.map((n) => fixed(n, 0)).join(', ')}),` +
      ` each ${summary.what} p50 ${fixed(summary.p50, 0)} ms, p99 ${fixed(summary.p99, 0)} ms; ${summary.failed} failed`,
  ];
  return { lines, summary };
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}
