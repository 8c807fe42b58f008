import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server under test: its own Node process listening on 127.0.0.1. */
export interface Server {
  name: string;
  pid: number;
  url: string;
  /** Peak resident set size so far (VmHWM), in bytes; null once the process is gone. */
  peakRss(): number | null;
  /** The last lines the process wrote (stdout and stderr), for error reports. */
  tail(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  /** The TypeScript entry point, relative to `cwd`; run as `node --import tsx <script>`. */
  script: string;
  cwd: string;
  env: Record<string, string>;
  /** Path that answers 200 once the server is ready, e.g. `/health/live`. */
  readyPath: string;
  readyTimeoutMs?: number;
  /** Extra Node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
}

/** A port the kernel just handed out on 127.0.0.1 (released again, so the server can take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** VmHWM of a live process, in bytes (Linux). */
export function peakRssOf(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Spawns `process.execPath --import tsx <script>` directly (no npx or tsx wrapper), so the pid
 * is the process that serves and its /proc status is the server's memory. Resolves once
 * `readyPath` answers 200; rejects (and kills the child) if it exits or times out first.
 */
export async function startServer(opts: StartOptions): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', opts.script], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const url = `http://127.0.0.1:${port}`;
  const server: Server = {
    name: opts.name,
    pid: child.pid ?? -1,
    url,
    peakRss: () => (exited(child) ? null : peakRssOf(child.pid ?? -1)),
    tail: () => lines.join('\n'),
    async stop() {
      if (exited(child)) return;
      child.kill('SIGTERM');
      if (await waitForExit(child, 10_000)) return;
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    },
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (exited(child)) {
      throw new Error(`${opts.name} exited (code ${child.exitCode}) before it was ready:\n${server.tail()}`);
    }
    try {
      const res = await fetch(url + opts.readyPath, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  await server.stop();
  throw new Error(`${opts.name} did not answer ${opts.readyPath} within ${opts.readyTimeoutMs ?? 60_000} ms`);
}
