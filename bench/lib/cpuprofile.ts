import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/** Where a frame lives: `pkg` for node_modules, `quire` for our code, `node:` internals, or the V8 label. */
function owner(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const [a, b] = url.slice(nm + 14).split('/');
    return a?.startsWith('@') ? `${a}/${b}` : (a ?? url);
  }
  if (url.startsWith('node:')) return 'node:internals';
  if (url.includes('/src/')) return 'quire (src/)';
  return url.replace(/^file:\/\//, '');
}

function top(map: Map<string, number>, total: number, n: number): SelfTime[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / total }));
}

/** Self time of one `.cpuprofile`, by function and by package, as shares of busy (non-idle) time. */
function summarizeFile(file: string, n: number) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === '(idle)') return;
    busy += us;
    const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${frame.lineNumber + 1}` : '';
    const fnKey = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    fns.set(fnKey, (fns.get(fnKey) ?? 0) + us);
    const pkg = owner(frame.url, frame.functionName);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
  });
  return { file, busyMs: busy / 1000, functions: top(fns, busy, n), packages: top(pkgs, busy, n) };
}

/**
 * The busiest `.cpuprofile` in `dir`: Node writes one per thread, and with `--import tsx` the
 * module loader has its own thread, so the main (serving) thread is the one with most CPU time.
 */
export function summarizeProfile(dir: string, n = 15) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const summaries = files.map((f) => summarizeFile(join(dir, f), n)).sort((a, b) => b.busyMs - a.busyMs);
  return summaries[0] ?? null;
}

export function formatProfile(summary: NonNullable<ReturnType<typeof summarizeProfile>>): string {
  const rows = (xs: SelfTime[]) => xs.map((x) => `  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.name}`);
  return [
    `CPU profile ${summary.file}: ${Math.round(summary.busyMs)} ms busy (shares below are of busy time)`,
    'self time by package:',
    ...rows(summary.packages),
    'self time by function:',
    ...rows(summary.functions),
  ].join('\n');
}
