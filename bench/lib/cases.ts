import type { Account, Credentials, Site } from './api.js';
import type { Case } from './load.js';
import type { Server } from './processes.js';
import { deletePostsBySlugPrefix, type LargeSeed, postContent } from './seed.js';
import { loginStorm, STORM_IN_FLIGHT } from './storm.js';

/** A load case plus the pid of the server it hits (for CPU accounting) and a check of one response. */
export type BenchCase = Case & {
  pid: number;
  check: (status: number, json: unknown) => string | null;
  /** The case this one is read against (the table's `× baseline` column); run whenever this one runs. */
  baseline?: string;
  /** Other cases its ratios need, run whenever this one runs. */
  alsoRun?: string[];
  /** A request that must list the same posts in the same order (checked by the probe). */
  sameAs?: { what: string; url: string };
  /** Sees the probe's response (e.g. to take its ETag for another case). */
  probed?: (res: Response) => void;
};
type Json = { data?: unknown; posts?: unknown; meta?: { nextCursor?: unknown; pagination?: Pagination } } | null;
type Pagination = { page?: number; total?: number };
type GhostPost = { id: string; tags?: { visibility?: string }[]; authors?: unknown[] };

/** The cases that are always run: every ratio is to one of them. */
export const BASELINES = ['hello', 'raw-pg'];

/** Every case name, in run order (as `buildCases` defines them). */
export const CASE_NAMES = [
  'hello',
  'raw-pg',
  'live',
  'list',
  'list-apikey',
  'login-storm',
  'get',
  'create',
  'me',
  'me-redis',
  'me-nocache',
  'raw-content',
  'hello-body',
  'content-warm',
  'content-304',
  'content-cold',
  'content-page100',
  'raw-filter',
  'content-filter',
  'raw-search',
  'search-public',
  'search-staff',
];

/** The cases over the large publication (it is seeded only when one of them runs). */
export const CONTENT_CASES = CASE_NAMES.slice(CASE_NAMES.indexOf('raw-content'));
/** The search cases (run when the search routes answer). */
export const SEARCH_CASES = ['raw-search', 'search-public', 'search-staff'];

/** The Content API list the issue names: 15 posts with their tags and authors. */
export const CONTENT_QUERY = 'include=tags,authors&limit=15';
/** Page 100 of it (posts 1,486 to 1,500 of the large publication). */
export const DEEP_PAGE = 100;
/** Ghost's NQL for "tagged x and featured" (`+` is AND; sent encoded, as Ghost's clients send it). */
export const CONTENT_FILTER = 'tag:x+featured:true';

/** The Content API cases' setting: the large publication, the warm list's size, search (or null). */
export interface ContentSetup {
  site: Site;
  seed: LargeSeed;
  /** Bytes of the Content API list's body (the `hello-body` baseline sends as many). */
  listBytes: number;
  search: SearchSetup | null;
}

/** The Content API path of the posts list with `query` (after the key). */
export const contentPath = (site: Site, query: string) => `/ghost/api/content/posts/?key=${site.contentKey}&${query}`;

/** The search cases' parameters; null when the search routes are not there (the cases are then skipped). */
export interface SearchSetup {
  /** The query, as a reader types it. */
  q: string;
  /** Results per page, the same in every search case. */
  limit: number;
  publicPath: string;
  staffPath: string;
  /** Checks a search response (its shape is the search module's). */
  check: (status: number, json: unknown) => string | null;
}

/** Users the login storm signs in as, in turn (a handful: it is the hashing that is loaded). */
export const STORM_USERS = 5;

/** Slug prefix of the posts the write case creates (titles `Bench write N`); removed after each run. */
export const WRITE_PREFIX = 'bench-write-';

/**
 * The cases, in the order each round runs them: the two baselines first, the write case last.
 * `only` keeps the baselines plus the named cases. `stormUsers`: the login storm's accounts
 * (none: no `login-storm` case).
 */
export function buildCases(
  servers: { quire: Server; rawPg: Server; hello: Server; quireRedis: Server; quireNoCache: Server },
  account: Account,
  dbUrl: string,
  content: ContentSetup | null,
  stormUsers: Credentials[],
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
      baseline: 'raw-pg',
      sameAs: { what: 'the raw-pg baseline', url: `${rawPg.url}/posts?tenant=${account.tenantId}` },
      check: (s, j) => page(s, j) ?? ((j as Json)?.meta?.nextCursor ? null : 'expected a next cursor'),
    },
    // The same read with an admin API key instead of an access token (issue 7): the key is
    // hashed and resolved (cached) on every request, the guard checks its scope.
    {
      name: 'list-apikey',
      pid: quire.pid,
      label: 'GET /api/v1/posts?limit=20 with an admin API key (X-API-Key)',
      origin: quire.url,
      path: '/api/v1/posts?limit=20',
      headers: { 'x-api-key': account.apiKey },
      baseline: 'list',
      check: page,
    },
    // The same read, on the same server, while sign-ins hash passwords on the thread pool: read
    // against `list` (p99 during / without), right after it in each round.
    ...(stormUsers.length
      ? [
          {
            name: 'login-storm',
            pid: quire.pid,
            label: `GET /api/v1/posts?limit=20, ${STORM_IN_FLIGHT} sign-ins in flight`,
            origin: quire.url,
            path: '/api/v1/posts?limit=20',
            headers: auth,
            baseline: 'list',
            background: () => loginStorm(quire.url, stormUsers),
            check: page,
          },
        ]
      : []),
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
    ...(content ? contentCases(servers, { ...content, authorization: auth.authorization }) : []),
  ];
  const wanted = new Set(all.filter((c) => BASELINES.includes(c.name) || !only || only.includes(c.name)));
  const pending = [...wanted];
  for (let c = pending.pop(); c; c = pending.pop()) {
    for (const name of [c.baseline, ...(c.alsoRun ?? [])]) {
      const base = all.find((x) => x.name === name);
      if (base && !wanted.has(base)) {
        wanted.add(base);
        pending.push(base);
      }
    }
  }
  return all.filter((c) => wanted.has(c));
}

/**
 * The Content API over the large publication (Ghost's `GET /posts/`, 15 posts with tags and
 * authors): warm (the cached response), a 304 revalidation, cold (the cache-off process) on
 * pages 1 and 100 and filtered, each cold list beside the same query in plain SQL; and search.
 */
function contentCases(
  servers: { quire: Server; rawPg: Server; hello: Server; quireNoCache: Server },
  { site, seed, search, listBytes, authorization }: ContentSetup & { authorization: string },
): BenchCase[] {
  const { quire, rawPg, hello, quireNoCache } = servers;
  const api = (q: string) => contentPath(site, q);
  const raw = (q: string) => `/content?tenant=${site.tenantId}&limit=15&${q}`;
  const filter = `filter=${encodeURIComponent(CONTENT_FILTER)}`;
  const listOf = (page: number, total: number) => (status: number, json: unknown) => {
    const posts = (json as Json)?.posts as GhostPost[] | undefined;
    const p = (json as Json)?.meta?.pagination;
    if (status !== 200 || !Array.isArray(posts) || posts.length !== 15) return 'expected 200 and 15 posts';
    if (p?.total !== total || p.page !== page) return `expected page ${page} of ${total} posts`;
    if (posts.some((x) => !x.authors?.length || !x.tags?.length)) return 'expected every post with tags and authors';
    if (posts.some((x) => x.tags?.some((t) => t.visibility !== undefined && t.visibility !== 'public')))
      return 'expected public tags only';
    return null;
  };
  const notModified: BenchCase = {
    name: 'content-304',
    pid: quire.pid,
    label: 'Content API posts, If-None-Match: 304',
    origin: quire.url,
    path: api(CONTENT_QUERY),
    headers: {}, // the ETag, from the warm case's probe
    expectStatus: 304,
    baseline: 'hello',
    alsoRun: ['live'],
    check: (s) => (s === 304 ? null : 'expected 304'),
  };
  const cases: BenchCase[] = [
    {
      name: 'raw-content',
      pid: rawPg.pid,
      label: 'bare Fastify + pg, Content API list query',
      origin: rawPg.url,
      path: raw('page=1'),
      check: listOf(1, seed.published),
    },
    {
      name: 'hello-body',
      pid: hello.pid,
      label: `bare Fastify, a ${(listBytes / 1024).toFixed(0)} KiB body (the list's size)`,
      origin: hello.url,
      path: `/bytes/${listBytes}`,
      check: (s, j) => (s === 200 && typeof (j as { data?: unknown })?.data === 'string' ? null : 'expected 200'),
    },
    {
      name: 'content-warm',
      pid: quire.pid,
      label: `GET /ghost/api/content/posts/?${CONTENT_QUERY}, cache hit`,
      origin: quire.url,
      path: api(CONTENT_QUERY),
      baseline: 'hello',
      alsoRun: ['hello-body', 'live'],
      sameAs: { what: 'the raw Content API query', url: rawPg.url + raw('page=1') },
      check: listOf(1, seed.published),
      probed: (res) => {
        const etag = res.headers.get('etag');
        if (etag) notModified.headers = { 'if-none-match': etag };
      },
    },
    notModified,
    {
      name: 'content-cold',
      pid: quireNoCache.pid,
      label: 'Content API posts, cache off, page 1',
      origin: quireNoCache.url,
      path: api(CONTENT_QUERY),
      baseline: 'raw-content',
      sameAs: { what: 'the raw Content API query', url: rawPg.url + raw('page=1') },
      check: listOf(1, seed.published),
    },
    {
      name: 'content-page100',
      pid: quireNoCache.pid,
      label: `Content API posts, cache off, page ${DEEP_PAGE}`,
      origin: quireNoCache.url,
      path: api(`${CONTENT_QUERY}&page=${DEEP_PAGE}`),
      baseline: 'content-cold',
      sameAs: { what: `the raw query's page ${DEEP_PAGE}`, url: rawPg.url + raw(`page=${DEEP_PAGE}`) },
      check: listOf(DEEP_PAGE, seed.published),
    },
    {
      name: 'raw-filter',
      pid: rawPg.pid,
      label: 'bare Fastify + pg, filtered list query',
      origin: rawPg.url,
      path: raw('page=1&tag=x'),
      check: listOf(1, seed.taggedXFeatured),
    },
    {
      name: 'content-filter',
      pid: quireNoCache.pid,
      label: `Content API posts, cache off, filter=${CONTENT_FILTER}`,
      origin: quireNoCache.url,
      path: api(`${CONTENT_QUERY}&${filter}`),
      baseline: 'raw-filter',
      sameAs: { what: 'the raw filtered query', url: rawPg.url + raw('page=1&tag=x') },
      check: listOf(1, seed.taggedXFeatured),
    },
  ];
  if (!search) return cases;
  const q = encodeURIComponent(search.q);
  return [
    ...cases,
    {
      name: 'raw-search',
      pid: rawPg.pid,
      label: `bare Fastify + pg, websearch_to_tsquery '${search.q}'`,
      origin: rawPg.url,
      path: `/search?tenant=${site.tenantId}&q=${q}&limit=${search.limit}`,
      check: (s, j) => (s === 200 && Array.isArray((j as Json)?.data) ? null : 'expected 200 and rows'),
    },
    {
      name: 'search-public',
      pid: quireNoCache.pid,
      label: `GET /ghost/api/content/search/?q=${search.q}, cache off`,
      origin: quireNoCache.url,
      path: search.publicPath,
      baseline: 'raw-search',
      check: search.check,
    },
    {
      name: 'search-staff',
      pid: quire.pid,
      label: `GET /api/v1/search?q=${search.q} (staff)`,
      origin: quire.url,
      path: search.staffPath,
      headers: { authorization, 'x-tenant-id': site.tenantId },
      baseline: 'raw-search',
      check: search.check,
    },
  ];
}

/** The ids a list response holds (Quire's `data`, Ghost's `posts`), in order. */
function idsOf(json: unknown): string[] | null {
  const rows = (json as Json)?.data ?? (json as Json)?.posts;
  return Array.isArray(rows) ? rows.map((row) => (row as { id: string }).id) : null;
}

/**
 * One request per case before any load: right status and shape, and each list returns the same
 * posts in the same order as its plain-SQL counterpart (`sameAs`).
 */
export async function probe(cases: BenchCase[]) {
  for (const c of cases) {
    const res = await fetch(c.origin + c.path, {
      method: c.method ?? 'GET',
      headers: { ...c.headers, ...(c.body && { 'content-type': 'application/json' }) },
      body: c.body?.(),
    });
    const json = (await res.json().catch(() => null)) as unknown;
    const problem = c.check(res.status, json);
    if (problem) {
      const got = JSON.stringify(json)?.slice(0, 2_000);
      throw new Error(`probe ${c.name} (${c.label}): ${problem}; got ${res.status} ${got}`);
    }
    c.probed?.(res);
    await c.after?.();
    if (!c.sameAs) continue;
    const ref = await fetch(c.sameAs.url);
    const want = idsOf(await ref.json().catch(() => null));
    if (!want || idsOf(json)?.join() !== want.join()) {
      throw new Error(`probe ${c.name}: ${c.sameAs.what} and Quire list different posts`);
    }
  }
}
