/**
 * `npm run bench`: Quire on a real PostgreSQL against two baselines measured in the same run
 * (bare Fastify; bare Fastify + node-postgres running the same list query). See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createAccount, createSite, createUsers, refreshIfOld } from './lib/api.js';
import {
  buildCases,
  CASE_NAMES,
  CONTENT_CASES,
  CONTENT_QUERY,
  contentPath,
  DEEP_PAGE,
  probe,
  SEARCH_CASES,
  type SearchSetup,
  STORM_USERS,
} from './lib/cases.js';
import { cpuSpent, snapshot } from './lib/cpu.js';
import { formatProfile, summarizeProfile } from './lib/cpuprofile.js';
import { type BackgroundSample, runLoad, type Sample, stopActiveLoad, summarize } from './lib/load.js';
import { type Server, type StartOptions, startServer } from './lib/processes.js';
import { RAW_CONTENT, RAW_LIST_SQL } from './lib/queries.js';
import { formatQueueTable, type QueueSample, queueRunners } from './lib/queues.js';
import {
  backgroundLines,
  type CaseResult,
  formatRounds,
  formatTable,
  mib,
  type RatioSpec,
  ratioLines,
  verdict,
  writeJson,
} from './lib/report.js';
import { countPosts, createBenchDatabase, explain, insertLargeTenant, insertPosts } from './lib/seed.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'bench', 'results');
const POSTS = 1000;
const API_POSTS = 5;
const GOAL = 0.5;
/** The large publication (Content API and search cases): published posts, drafts, pages. */
const LARGE = { published: 10_000, drafts: 500, pages: 20 };
/** The search query: two words that are both in about one post in 20 (about 500 matches). */
const SEARCH_Q = 'kubernetes failover';
const SEARCH_LIMIT = 15;

/** The Content API and search figures (issue 6): goals, and ratios only reported. */
const CONTENT_RATIOS: RatioSpec[] = [
  { label: 'Content API list, warm (cache hit) / bare Fastify', case: 'content-warm', over: 'hello', min: 0.7 },
  { label: 'Content API list, warm / bare Fastify sending as many bytes', case: 'content-warm', over: 'hello-body' },
  { label: 'Content API list, warm / Quire GET /health/live', case: 'content-warm', over: 'live' },
  { label: 'Content API list, 304 revalidation / bare Fastify', case: 'content-304', over: 'hello' },
  { label: 'Content API list, 304 revalidation / Quire GET /health/live', case: 'content-304', over: 'live' },
  {
    label: 'Content API list, cold (cache off) / the same query in raw pg',
    case: 'content-cold',
    over: 'raw-content',
    min: 0.4,
  },
  {
    label: `Content API list, page ${DEEP_PAGE} / page 1, p50 latency (cache off, ${LARGE.published.toLocaleString('en')} posts)`,
    case: 'content-page100',
    over: 'content-cold',
    metric: 'p50',
    max: 1.5,
  },
  { label: 'Content API filtered list, cold / the same query in raw pg', case: 'content-filter', over: 'raw-filter' },
  { label: 'Content API filtered list, cold / unfiltered cold', case: 'content-filter', over: 'content-cold' },
  { label: 'raw filtered query / raw list query', case: 'raw-filter', over: 'raw-content' },
  { label: 'public search (cache off) / raw websearch_to_tsquery query', case: 'search-public', over: 'raw-search' },
  { label: 'staff search / raw websearch_to_tsquery query', case: 'search-staff', over: 'raw-search' },
  { label: 'raw websearch_to_tsquery query / raw list query', case: 'raw-search', over: 'raw-content' },
];

/** The login storm (issue 7): hashing on the thread pool must not stall the event loop. */
const STORM_RATIOS: RatioSpec[] = [
  { label: 'login storm: read p99 during / without', case: 'login-storm', over: 'list', metric: 'p99', max: 2 },
  { label: 'list with an admin API key / with an access token', case: 'list-apikey', over: 'list' },
];

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(n) || n < min) {
    console.error(`${name} must be a number >= ${min} (got ${raw})`);
    process.exit(2);
  }
  return n;
}

const settings = {
  databaseUrl: process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
  durationS: envNumber('BENCH_DURATION_S', 3, 1),
  rounds: Math.round(envNumber('BENCH_ROUNDS', 3, 1)),
  connections: Math.round(envNumber('BENCH_CONNECTIONS', 10, 1)),
  /** Warm-up before each case's first measurement; later rounds warm up for at most 0.5 s. */
  warmupS: envNumber('BENCH_WARMUP_S', 2, 0),
  /** Comma-separated case names to run besides the two baselines (default: all). */
  only: process.env.BENCH_CASES?.split(',').map((s) => s.trim()),
  redisUrl: process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379',
  /** Jobs per queue sample; `0` skips the queue benchmark. */
  queueJobs: Math.round(envNumber('BENCH_QUEUE_JOBS', 5000, 0)),
  /** `1`: run Quire with --cpu-prof and print where its CPU time went. */
  cpuProfile: process.env.BENCH_CPU_PROF === '1',
};

const unknownCases = settings.only?.filter((name) => !CASE_NAMES.includes(name)) ?? [];
if (unknownCases.length) {
  console.error(`BENCH_CASES: no case named ${unknownCases.join(', ')} (cases: ${CASE_NAMES.join(', ')})`);
  process.exit(2);
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

// --- cleanup, also on Ctrl-C: stop the load, stop the servers, drop the database ---
const cleanups: Array<{ what: string; run: () => Promise<void> }> = [];
let interrupted = 0;
class Interrupted extends Error {}
const checkpoint = () => {
  if (interrupted) throw new Interrupted('interrupted');
};
// A terminal's Ctrl-C reaches npm and this process at once, and npm forwards it again: only a
// signal more than 2 s after the first one skips the cleanup.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted && Date.now() - interrupted > 2_000) process.exit(130);
    if (interrupted) return;
    interrupted = Date.now();
    log(`${signal}: stopping and cleaning up (send it again to exit at once)`);
    stopActiveLoad();
  });
}
async function cleanUp() {
  for (const { what, run } of cleanups.splice(0).reverse()) {
    await run().catch((err) => log(`cleanup (${what}) failed: ${err instanceof Error ? err.message : err}`));
  }
}

async function start(opts: Omit<StartOptions, 'cwd'>): Promise<Server> {
  const server = await startServer({ ...opts, cwd: ROOT });
  cleanups.push({ what: `stop ${opts.name}`, run: () => server.stop() });
  log(`${opts.name} is up: pid ${server.pid}, ${server.url}`);
  return server;
}

async function main() {
  const startedAt = new Date();
  const loadAtStart = loadavg();
  log(
    `settings: ${settings.rounds} rounds × (${settings.warmupS} s warm-up + ${settings.durationS} s; ` +
      `${Math.min(settings.warmupS, 0.5)} s warm-up after round 1), ` +
      `${settings.connections} connections; ${cpus().length} CPUs, load ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const db = await createBenchDatabase(settings.databaseUrl);
  cleanups.push({ what: `drop database ${db.name}`, run: db.drop });
  log(`database ${db.name} on ${redact(settings.databaseUrl)}`);
  checkpoint();

  const jwtSecret = randomBytes(36).toString('base64url');
  const secretsKey = randomBytes(32).toString('base64');
  // One directory per profiled process: Quire (cache on) and Quire with the cache off.
  const profileDir = join(RESULTS, 'cpu-profile');
  const profileDirNoCache = join(profileDir, 'nocache');
  if (settings.cpuProfile) rmSync(profileDir, { recursive: true, force: true });
  const profileArgs = (dir: string) => (settings.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', dir] : []);
  const quire = await start({
    name: 'quire',
    script: 'src/main.ts',
    readyPath: '/health/live',
    nodeArgs: profileArgs(profileDir),
    env: {
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: '10',
      MIGRATE_ON_START: 'true',
      JWT_SECRET: jwtSecret,
      SECRETS_KEY: secretsKey,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '100000000',
      AUTH_RATE_LIMIT_MAX: '100000000',
      LOGIN_RATE_LIMIT_MAX: '100000000',
      RATE_LIMIT_TENANT_MAX: '100000000',
      API_KEY_RATE_LIMIT_MAX: '100000000',
      // Production shape: jobs run in `npm run worker`, not in the API under load.
      WORKERS: 'off',
    },
  });
  checkpoint();
  // The same app twice more for GET /auth/me: in Redis mode, and with the cache off.
  const quireEnv = {
    NODE_ENV: 'production',
    DATABASE_URL: db.url,
    DATABASE_POOL_MAX: '10',
    MIGRATE_ON_START: 'false',
    JWT_SECRET: jwtSecret,
    SECRETS_KEY: secretsKey,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '100000000',
    AUTH_RATE_LIMIT_MAX: '100000000',
    LOGIN_RATE_LIMIT_MAX: '100000000',
    RATE_LIMIT_TENANT_MAX: '100000000',
    API_KEY_RATE_LIMIT_MAX: '100000000',
    WORKERS: 'off',
  };
  const redisPrefix = `qbench_${randomBytes(4).toString('hex')}`;
  const quireRedis = await start({
    name: 'quire-redis',
    script: 'src/main.ts',
    readyPath: '/health/live',
    env: { ...quireEnv, REDIS_URL: settings.redisUrl, REDIS_KEY_PREFIX: redisPrefix },
  });
  const quireNoCache = await start({
    name: 'quire-nocache',
    script: 'src/main.ts',
    readyPath: '/health/live',
    nodeArgs: profileArgs(profileDirNoCache),
    env: { ...quireEnv, CACHE_TTL_SECONDS: '0' },
  });
  checkpoint();
  const rawPg = await start({
    name: 'raw-pg',
    script: 'bench/servers/raw-pg.ts',
    readyPath: '/posts?tenant=00000000-0000-0000-0000-000000000000',
    env: { NODE_ENV: 'production', DATABASE_URL: db.url, DATABASE_POOL_MAX: '10' },
  });
  const hello = await start({ name: 'hello', script: 'bench/servers/hello.ts', readyPath: '/', env: {} });
  checkpoint();

  const account = await createAccount(quire.url, API_POSTS);
  await insertPosts(db.url, account.tenantId, account.userId, API_POSTS, POSTS - API_POSTS);
  log(`seeded tenant ${account.tenantId}: ${await countPosts(db.url, account.tenantId)} posts`);
  const plan = await explain(db.url, RAW_LIST_SQL, [account.tenantId]);
  log(`raw-pg list plan: ${plan.filter((line) => !line.startsWith('Index Cond')).join(' / ')}`);
  if (!plan.some((line) => line.startsWith('Index Scan'))) log('warning: the raw ceiling does not use an index');
  checkpoint();

  // The large publication, for the Content API and search cases (seeded only when they run).
  const wantsContent = !settings.only || settings.only.some((name) => CONTENT_CASES.includes(name));
  let content: Parameters<typeof buildCases>[3] = null;
  const notes: string[] = [];
  if (wantsContent) {
    const site = await createSite(quire.url, account, 'Bench Large Publication');
    const seededAt = Date.now();
    const seed = await insertLargeTenant(db.url, site.tenantId, account.userId, LARGE);
    log(
      `seeded tenant ${site.tenantId}: ${seed.published} published posts, ${seed.drafts} drafts, ${seed.pages} pages ` +
        `(${seed.taggedXFeatured} tagged x and featured) in ${((Date.now() - seededAt) / 1000).toFixed(1)} s`,
    );
    for (const [what, text, params] of [
      ['raw content list, page 1', RAW_CONTENT.page, [site.tenantId, 15, 0]],
      [`raw content list, page ${DEEP_PAGE}`, RAW_CONTENT.page, [site.tenantId, 15, (DEEP_PAGE - 1) * 15]],
      ['raw content count', RAW_CONTENT.count, [site.tenantId]],
      ['raw filtered list', RAW_CONTENT.filteredPage, [site.tenantId, 15, 0, 'x']],
    ] as const) {
      const plan = await explain(db.url, text, [...params]);
      log(
        `${what} plan: ${plan.filter((l) => /^(Limit|Index|Sort|Incremental|Seq|Bitmap|Aggregate|Nested)/.test(l)).join(' / ')}`,
      );
    }
    const search = await searchSetup(quire, site, account, wantsSearch());
    if (!search && wantsSearch()) {
      notes.push('skipped: search routes not present (raw-search, search-public, search-staff not run)');
    }
    const listBytes = (await (await fetch(quire.url + contentPath(site, CONTENT_QUERY))).arrayBuffer()).byteLength;
    content = { site, seed, search, listBytes };
  }
  function wantsSearch() {
    return !settings.only || settings.only.some((name) => SEARCH_CASES.includes(name));
  }
  // The login storm's accounts (registered through the API, each signed in once).
  const stormUsers =
    !settings.only || settings.only.includes('login-storm') ? await createUsers(quire.url, STORM_USERS) : [];
  const cases = buildCases(
    { quire, rawPg, hello, quireRedis, quireNoCache },
    account,
    db.url,
    content,
    stormUsers,
    settings.only,
  );
  await probe(cases);
  const monitor = new pg.Client({ connectionString: db.url, application_name: 'quire-bench-monitor' });
  await monitor.connect();
  cleanups.push({ what: 'close monitor connection', run: () => monitor.end() });

  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let round = 1; round <= settings.rounds; round++) {
    for (const c of cases) {
      checkpoint();
      // Access tokens last 15 minutes: sign in again when this one is older than 10.
      if (await refreshIfOld(quire.url, account)) {
        for (const k of cases) if (k.headers?.authorization) k.headers.authorization = `Bearer ${account.accessToken}`;
      }
      // A background load (the login storm) runs through the warm-up and the measurement; it
      // is stopped, and its requests in flight answered, before anything else runs.
      const background = c.background?.();
      let s: Sample;
      let spent: ReturnType<typeof cpuSpent>;
      let side: BackgroundSample | undefined;
      try {
        // The JIT and the pools are warm after the first round: later rounds only open connections.
        const warmupS = round === 1 ? settings.warmupS : Math.min(settings.warmupS, 0.5);
        if (warmupS > 0) await runLoad(c, { durationS: warmupS, connections: settings.connections });
        await background?.ready();
        checkpoint();
        const before = await snapshot(c.pid, monitor, db.name);
        background?.begin();
        s = await runLoad(c, { durationS: settings.durationS, connections: settings.connections });
        background?.end();
        checkpoint(); // an interrupted run's figures are not kept
        spent = cpuSpent(before, await snapshot(c.pid, monitor, db.name));
      } finally {
        side = await background?.stop();
      }
      const perReq = (ms: number | null) => (ms === null ? null : (ms * 1000) / Math.max(1, s.ok + s.non2xx));
      s.cpuUsPerReq = { server: perReq(spent.serverMs), db: perReq(spent.dbMs) };
      if (side) s.background = side;
      await c.after?.();
      await drained(monitor, db.name);
      samples.get(c.name)!.push(s);
      log(
        `round ${round}/${settings.rounds} ${c.name.padEnd(15)} ${s.reqPerSec.toFixed(0).padStart(6)} req/s` +
          `  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms`,
      );
      if (side) {
        log(
          `  ${c.name}: ${side.perSec.toFixed(0)} ${side.what}/s with ${side.inFlight} in flight` +
            `  p50 ${side.p50.toFixed(0)} ms  p99 ${side.p99.toFixed(0)} ms` +
            (side.failed ? `; ${side.failed} failed, statuses ${JSON.stringify(side.statusCodes)}` : ''),
        );
      }
      if (s.non2xx + s.errors + s.timeouts > 0) {
        log(
          `  ${c.name}: ${s.non2xx} non-2xx, ${s.errors} errors, ${s.timeouts} timeouts; statuses ` +
            `${JSON.stringify(s.statusCodes)}`,
        );
      }
    }
  }

  // Queue throughput, in this process: Quire's port on each backend beside the raw library.
  const queueSamples = new Map<string, QueueSample[]>(queueRunners.map((r) => [r.name, []]));
  if (settings.queueJobs > 0) {
    const queueSettings = {
      redisUrl: settings.redisUrl,
      databaseUrl: db.url,
      jobs: settings.queueJobs,
      parallel: 50,
      concurrency: 20,
    };
    // One unrecorded full pass first, so no runner is measured cold (the JIT doubles BullMQ's
    // rate between a first and a second pass), and every other round runs in reverse order so
    // no runner always follows the same one.
    for (const runner of queueRunners) await runner.run(queueSettings);
    for (let round = 1; round <= settings.rounds; round++) {
      const order = round % 2 === 1 ? queueRunners : [...queueRunners].reverse();
      for (const runner of order) {
        checkpoint();
        const sample = await runner.run(queueSettings);
        queueSamples.get(runner.name)!.push(sample);
        log(
          `round ${round}/${settings.rounds} ${runner.name.padEnd(11)} ${sample.enqueuePerSec.toFixed(0).padStart(6)} enqueued/s` +
            `  ${sample.processPerSec.toFixed(0).padStart(6)} processed/s`,
        );
      }
    }
  }

  const rss = { quire: quire.peakRss(), rawPg: rawPg.peakRss(), hello: hello.peakRss() };
  const medianOf = (name: string) => summarize(samples.get(name)!);
  const results: CaseResult[] = cases.map((c) => {
    const median = medianOf(c.name);
    const ratios = {
      hello: median.reqPerSec / medianOf('hello').reqPerSec,
      rawPg: median.reqPerSec / medianOf('raw-pg').reqPerSec,
    };
    const baseline = c.baseline ? { name: c.baseline, ratio: median.reqPerSec / medianOf(c.baseline).reqPerSec } : null;
    return { name: c.name, label: c.label, rounds: samples.get(c.name)!, median, ratios, baseline };
  });
  const loadAtEnd = loadavg();

  const out = [
    `Quire benchmark, ${startedAt.toISOString()}: ${settings.rounds} round(s) × ${settings.durationS} s ` +
      `(+${settings.warmupS} s warm-up, ${Math.min(settings.warmupS, 0.5)} s after round 1), ` +
      `${settings.connections} connections, ${cpus().length} CPUs, ` +
      `load ${loadAtStart[0]!.toFixed(2)} → ${loadAtEnd[0]!.toFixed(2)}`,
    '',
    formatTable(results),
    '',
    formatRounds(results),
    '',
    `quire peak RSS: ${mib(rss.quire)} (baselines: raw-pg ${mib(rss.rawPg)}, hello ${mib(rss.hello)})`,
  ];
  const goal = verdict(results, GOAL);
  out.push(...goal.lines);
  const storm = ratioLines(results, STORM_RATIOS);
  const stormLoad = backgroundLines(results, 'login-storm', 'login storm', 'logins');
  out.push(...storm.lines, ...stormLoad.lines);
  const contentRatios = ratioLines(results, CONTENT_RATIOS);
  out.push(...contentRatios.lines, ...notes);
  const meOn = results.find((r) => r.name === 'me');
  const meOff = results.find((r) => r.name === 'me-nocache');
  const meRedis = results.find((r) => r.name === 'me-redis');
  if (meOn && meOff) {
    out.push(
      `GET /auth/me, cache on / cache off = ${(meOn.median.reqPerSec / meOff.median.reqPerSec).toFixed(2)} (in-process)` +
        (meRedis ? `, ${(meRedis.median.reqPerSec / meOff.median.reqPerSec).toFixed(2)} (Redis mode)` : ''),
    );
  }
  const queueResults = queueRunners
    .map((r) => ({ name: r.name, label: r.label, samples: queueSamples.get(r.name)! }))
    .filter((r) => r.samples.length > 0);
  if (queueResults.length) {
    out.push(
      '',
      `queues: ${settings.queueJobs} no-op jobs per sample (medians of ${settings.rounds})`,
      formatQueueTable(queueResults),
    );
  }
  console.log(out.join('\n'));

  writeJson(join(RESULTS, 'latest.json'), {
    startedAt,
    finishedAt: new Date(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, loadAtStart, loadAtEnd },
    settings: { ...settings, databaseUrl: redact(settings.databaseUrl), posts: POSTS },
    results,
    queues: queueResults,
    peakRssBytes: rss,
    goal: goal.summary,
    ratios: [...storm.summary, ...contentRatios.summary],
    loginStorm: stormLoad.summary,
    notes,
  });
  log(`results written to ${join('bench', 'results', 'latest.json')}`);

  if (settings.cpuProfile) {
    await cleanUp(); // Quire writes its profile when it exits
    for (const [what, dir] of [
      ['quire (cache on)', profileDir],
      ['quire-nocache (cache off)', profileDirNoCache],
    ]) {
      const summary = summarizeProfile(dir!);
      console.log(summary ? `\n${what}: ${formatProfile(summary)}` : `\nno CPU profile found in ${dir}`);
    }
  }
}

/**
 * Waits (up to 10 s) until no statement runs in the bench database: a slow case's requests cut
 * off at the end of its measurement still run in PostgreSQL, and would load the next case.
 */
async function drained(monitor: pg.Client, database: string) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { rows } = await monitor.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()`,
      [database],
    );
    if (!rows[0]?.n) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  log('warning: statements still running in the bench database 10 s after a measurement');
}

/**
 * The search cases' setup, when the search routes exist (`src/modules/search/routes.ts`) and
 * both answer 200 for the query; otherwise null (the cases are skipped, and the output says so).
 */
async function searchSetup(
  quire: Server,
  site: { tenantId: string; contentKey: string },
  account: { accessToken: string },
  wanted: boolean,
): Promise<SearchSetup | null> {
  if (!wanted) return null;
  if (!existsSync(join(ROOT, 'src', 'modules', 'search', 'routes.ts'))) {
    log('search: src/modules/search/routes.ts is not there');
    return null;
  }
  const q = encodeURIComponent(SEARCH_Q);
  const publicPath = `/ghost/api/content/search/?key=${site.contentKey}&q=${q}&limit=${SEARCH_LIMIT}`;
  const staffPath = `/api/v1/search?q=${q}&limit=${SEARCH_LIMIT}`;
  const pub = await fetch(quire.url + publicPath);
  const staff = await fetch(quire.url + staffPath, {
    headers: { authorization: `Bearer ${account.accessToken}`, 'x-tenant-id': site.tenantId },
  });
  const bodies = [await pub.text(), await staff.text()];
  if (pub.status !== 200 || staff.status !== 200) {
    log(
      `search: the routes answer ${pub.status} (public) and ${staff.status} (staff): ${bodies.join(' | ').slice(0, 500)}`,
    );
    return null;
  }
  const check = (status: number, json: unknown) => {
    if (status !== 200) return 'expected 200';
    const hits = Object.values((json ?? {}) as Record<string, unknown>).find(Array.isArray);
    return hits?.length ? null : 'expected a non-empty list of results';
  };
  return { q: SEARCH_Q, limit: SEARCH_LIMIT, publicPath, staffPath, check };
}

try {
  await main();
} catch (err) {
  process.exitCode = err instanceof Interrupted ? 130 : 1;
  if (!(err instanceof Interrupted)) console.error(err);
} finally {
  await cleanUp();
}
process.exit(process.exitCode ?? 0);
