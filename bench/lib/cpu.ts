import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** Clock ticks per second for /proc/<pid>/stat (almost always 100). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process (all its threads), in ms; null if it is gone or not Linux. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / TICKS) * 1000;
  } catch {
    return null;
  }
}

/** Client backends connected to `database` (not the caller's own, not autovacuum). */
async function backendPids(monitor: pg.Client, database: string): Promise<number[]> {
  const { rows } = await monitor.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    [database],
  );
  return rows.map((r) => r.pid);
}

export interface CpuSnapshot {
  server: number | null;
  backends: Map<number, number>;
}

/**
 * CPU time of the server process and of the PostgreSQL backends of the bench database. Works
 * when PostgreSQL runs on this machine and its processes are readable; otherwise the backend
 * figures stay empty and are reported as n/a.
 */
export async function snapshot(serverPid: number, monitor: pg.Client, database: string): Promise<CpuSnapshot> {
  const backends = new Map<number, number>();
  for (const pid of await backendPids(monitor, database)) {
    const ms = cpuMs(pid);
    if (ms !== null) backends.set(pid, ms);
  }
  return { server: cpuMs(serverPid), backends };
}

/** CPU ms spent between two snapshots; backends that appeared in between count from zero. */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot) {
  const server = before.server !== null && after.server !== null ? after.server - before.server : null;
  let db = 0;
  for (const [pid, ms] of after.backends) db += ms - (before.backends.get(pid) ?? 0);
  return { serverMs: server, dbMs: after.backends.size ? db : null };
}
