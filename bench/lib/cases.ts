import type { Account } from './api.js';
import type { Case } from './load.js';
import type { Server } from './processes.js';
import { deletePostsBySlugPrefix, postContent } from './seed.js';

/** A load case plus the pid of the server it hits (for CPU accounting) and a check of one response. */
export type BenchCase = Case & { pid: number; check: (status: number, json: unknown) => string | null };
type Json = { data?: unknown; meta?: { nextCursor?: unknown } } | null;

/** Every case name, in run order (as `buildCases` defines them). */
export const CASE_NAMES = ['hello', 'raw-pg', 'live', 'list', 'get', 'create', 'me', 'me-redis', 'me-nocache'];

/** Slug prefix of the posts the write case creates (titles `Bench write N`); removed after each run. */
export const WRITE_PREFIX = 'bench-write-';

/**
 * The cases, in the order each round runs them: the two baselines first, the write case last.
 * `only` keeps the baselines plus the named cases.
 */
export function buildCases(
  servers: { quire: Server; rawPg: Server; hello: Server; quireRedis: Server; quireNoCache: Server },
  account: Account,
  dbUrl: string,
  only?: string[],
): BenchCase[] {
  const { quire, rawPg, hello, quireRedis, quireNoCache } = servers;
  const me = (s: number, j: unknown) =>
    s === 200 && (j as { data?: { user?: { id?: string } } })?.data?.user?.id === account.userId
      ? null
      : 'expected 200 and the caller';
  const auth = { authorization: `Bearer ${account.accessToken}`, 'x-tenant-id': account.tenantId };
  const page = (status: number, json: unknown) => {
    const data = (json as Json)?.data;
    return status === 200 && Array.isArray(data) && data.length === 20 ? null : 'expected 200 and 20 posts';
  };
  const body = postContent(100_000).body;
  let written = 0;
  const all: BenchCase[] = [
    {
      name: 'hello',
      pid: hello.pid,
      label: 'bare Fastify GET /',
      origin: hello.url,
      path: '/',
      check: (s, j) => (s === 200 && (j as { hello?: string }).hello === 'world' ? null : 'expected {hello:world}'),
    },
    {
      name: 'raw-pg',
      pid: rawPg.pid,
      label: 'bare Fastify + pg, same list query',
      origin: rawPg.url,
      path: `/posts?tenant=${account.tenantId}`,
      check: page,
    },
    {
      name: 'live',
      pid: quire.pid,
      label: 'GET /health/live',
      origin: quire.url,
      path: '/health/live',
      check: (s) => (s === 200 ? null : 'expected 200'),
    },
    {
      name: 'list',
      pid: quire.pid,
      label: 'GET /api/v1/posts?limit=20',
      origin: quire.url,
      path: '/api/v1/posts?limit=20',
      headers: auth,
      check: (s, j) => page(s, j) ?? ((j as Json)?.meta?.nextCursor ? null : 'expected a next cursor'),
    },
    {
      name: 'get',
      pid: quire.pid,
      label: 'GET /api/v1/posts/:id',
      origin: quire.url,
      path: `/api/v1/posts/${account.postIds[0]}`,
      headers: auth,
      check: (s) => (s === 200 ? null : 'expected 200'),
    },
    {
      name: 'create',
      pid: quire.pid,
      label: 'POST /api/v1/posts',
      origin: quire.url,
      path: '/api/v1/posts',
      method: 'POST',
      headers: auth,
      body: () => JSON.stringify({ title: `Bench write ${++written}`, body }),
      // Writes grow the table: undo them so every round (and every list) sees the same 1,000 posts.
      after: async () => void (await deletePostsBySlugPrefix(dbUrl, account.tenantId, WRITE_PREFIX)),
      check: (s) => (s === 201 ? null : 'expected 201'),
    },
    {
      name: 'me',
      pid: quire.pid,
      label: 'GET /auth/me, in-process cache (L1)',
      origin: quire.url,
      path: '/api/v1/auth/me',
      headers: { authorization: auth.authorization },
      check: me,
    },
    {
      name: 'me-redis',
      pid: quireRedis.pid,
      label: 'GET /auth/me, Redis mode (L1 + L2, Redis rate limit)',
      origin: quireRedis.url,
      path: '/api/v1/auth/me',
      headers: { authorization: auth.authorization },
      check: me,
    },
    {
      name: 'me-nocache',
      pid: quireNoCache.pid,
      label: 'GET /auth/me, cache off (CACHE_TTL_SECONDS=0)',
      origin: quireNoCache.url,
      path: '/api/v1/auth/me',
      headers: { authorization: auth.authorization },
      check: me,
    },
  ];
  return all.filter((c) => ['hello', 'raw-pg'].includes(c.name) || !only || only.includes(c.name));
}

/** One request per case before any load: right status and shape, and both lists return the same rows. */
export async function probe(cases: BenchCase[]) {
  const ids: Record<string, string[]> = {};
  for (const c of cases) {
    const res = await fetch(c.origin + c.path, {
      method: c.method ?? 'GET',
      headers: { ...c.headers, ...(c.body && { 'content-type': 'application/json' }) },
      body: c.body?.(),
    });
    const json = (await res.json().catch(() => null)) as unknown;
    const problem = c.check(res.status, json);
    if (problem) throw new Error(`probe ${c.name} (${c.label}): ${problem}; got ${res.status} ${JSON.stringify(json)}`);
    const data = (json as Json)?.data;
    if (Array.isArray(data)) ids[c.name] = data.map((row) => (row as { id: string }).id);
    await c.after?.();
  }
  if (ids.list && ids['raw-pg'] && ids.list.join() !== ids['raw-pg'].join()) {
    throw new Error('probe: the raw-pg baseline and Quire list different posts');
  }
}
