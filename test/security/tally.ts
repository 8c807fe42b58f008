import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/**
 * The attack suite's bookkeeping: every request is an attempt; an attempt *succeeded* when its
 * class's verdict says so, or when its response leaked anything (a 5xx, a stack trace, SQL error
 * text, a marker of data the caller may not see, a script in an HTML field), or when a tenant's
 * state it must not touch changed. One tally for the whole suite (every database kind).
 */

export type AttemptClass =
  | 'cross-tenant'
  | 'revoked-key'
  | 'unauthenticated'
  | 'forged-jwt'
  | 'body'
  | 'injection'
  | 'mass-assignment'
  | 'path-traversal'
  | 'public-surface'
  | 'stored-xss';

/** Secret strings planted in a tenant's data: `priv` never leaves its members, `pub` is published. */
export type MarkerKind = 'A-priv' | 'A-pub' | 'B-priv' | 'B-pub';

export interface Attempt {
  cls: AttemptClass;
  principal: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string or Buffer as is (set content-type in headers). */
  payload?: unknown;
  /** Marker kinds this caller may legitimately see in the response. */
  maySee: MarkerKind[];
  /** The class's own verdict: a reason when the attack worked. */
  judge?: (res: LightMyRequestResponse) => string | undefined;
  /** Tenants whose state must not change through this request. */
  watch?: Array<'A' | 'B'>;
  /** Is this a request whose route must exist (a route_not_found then means the suite is wrong)? */
  expectRoute?: boolean;
}

export interface Finding {
  db: string;
  cls: AttemptClass;
  principal: string;
  request: string;
  status: number;
  reasons: string[];
  body: string;
  /** What was sent (the start of the body). */
  sent?: string;
}

export const tally = {
  attempts: 0,
  succeeded: 0,
  byClass: {} as Record<string, number>,
  findings: [] as Finding[],
  /** Requests that hit no route although they should have (the suite's own mistake). */
  missedRoutes: [] as string[],
};

// Leak patterns, checked on every response of the suite.
const STACK = [
  /\n\s+at [^\n]*\(?[^\n]*:\d+:\d+\)?/,
  /\bat (?:async )?[\w.$<>]+ \([^)\n]*:\d+:\d+\)/,
  /node_modules\//,
  /\/work\/main\//,
  /\.[cm]?[jt]s:\d+:\d+/,
  /"stack"\s*:/,
  /\b(?:TypeError|ReferenceError|RangeError|SyntaxError): [^"\n]*\n/,
];
const SQL = [
  /syntax error at or near/i,
  /relation "[^"]*"/i,
  /column "[^"]*"/i,
  /\bpg_[a-z_]+/i,
  /\bviolates\b/i,
  /PostgresError/,
  /duplicate key value/i,
  /invalid input syntax for/i,
  /unterminated quoted/i,
  /current transaction is aborted/i,
  /SQLSTATE/i,
  /Failed query:/,
  /\bDrizzleError\b/,
  /invalid byte sequence for encoding/i,
];
const FILES = [/root:x:0:0:/, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, /\[boot loader\]/i];

/** Script in something a browser or feed reader renders as HTML. */
export function scriptIn(html: string): string | undefined {
  if (/<script\b/i.test(html)) return '<script> element';
  if (/<[a-z][^>]*\son[a-z]+\s*=/i.test(html)) return 'event-handler attribute';
  if (/<[a-z][^>]*\b(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:/i.test(html)) return 'javascript: URL';
  return undefined;
}

const decodeEntities = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#0*39;|&apos;/g, "'")
    .replace(/&#x([0-9a-f]+);/gi, (_m, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&amp;/g, '&');

/**
 * The HTML-bearing parts of a response: JSON fields named html / content_html / snippet, and in
 * XML feeds RSS `description` and `content:encoded` and every Atom element typed html. Plain-text
 * fields (titles, excerpts in JSON) are the client's to escape and are not HTML here.
 */
export function htmlParts(res: LightMyRequestResponse): Array<{ where: string; html: string }> {
  const type = String(res.headers['content-type'] ?? '');
  const out: Array<{ where: string; html: string }> = [];
  if (/json/.test(type)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      return out;
    }
    const walk = (v: unknown, path: string) => {
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) walk(x, `${path}[${i}]`);
      } else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (typeof x === 'string' && (k === 'html' || k === 'content_html' || k === 'snippet'))
            out.push({ where: `${path}.${k}`, html: x });
          else walk(x, `${path}.${k}`);
        }
      }
    };
    walk(parsed, '$');
  } else if (/xml/.test(type)) {
    const body = res.body;
    // Markup injected as XML elements (outside CDATA).
    const outside = body.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
    if (/<script\b/i.test(outside)) out.push({ where: 'xml markup', html: outside });
    // RSS: an item's description ("entity-encoded HTML") and content:encoded are HTML. The
    // channel's description is a phrase of plain text, escaped once as XML text.
    for (const item of body.matchAll(/<item>([\s\S]*?)<\/item>/g)) {
      for (const m of item[1]!.matchAll(/<(description|content:encoded)>([\s\S]*?)<\/\1>/g)) {
        const decoded = m[2]!.includes('<![CDATA[')
          ? m[2]!.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1')
          : decodeEntities(m[2]!);
        out.push({ where: `rss item <${m[1]}>`, html: decoded });
      }
    }
    for (const m of body.matchAll(/<([\w:]+)\s[^>]*type="html"[^>]*>([\s\S]*?)<\/\1>/g)) {
      const decoded = m[2]!.includes('<![CDATA[')
        ? m[2]!.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1')
        : decodeEntities(m[2]!);
      out.push({ where: `atom <${m[1]} type="html">`, html: decoded });
    }
  } else if (/html/.test(type)) {
    out.push({ where: 'html body', html: res.body });
  }
  return out;
}

export interface Inspector {
  markers: Array<{ value: string; kind: MarkerKind }>;
}

/** Everything wrong with a response whatever the attack: the leak checks. */
export function leaksOf(res: LightMyRequestResponse, a: Attempt, markers: Inspector['markers']): string[] {
  const reasons: string[] = [];
  if (res.statusCode >= 500) reasons.push(`server error ${res.statusCode}`);
  const body = res.body ?? '';
  for (const re of STACK) if (re.test(body)) reasons.push(`stack trace or server path (${re})`);
  for (const re of SQL) if (re.test(body)) reasons.push(`SQL error text (${re})`);
  for (const re of FILES) if (re.test(body)) reasons.push(`file content (${re})`);
  const seen = `${body}\n${JSON.stringify(res.headers)}`.toLowerCase();
  const sent = `${a.url}\n${JSON.stringify(a.headers ?? {})}\n${
    typeof a.payload === 'string' ? a.payload : Buffer.isBuffer(a.payload) ? '' : JSON.stringify(a.payload ?? '')
  }`.toLowerCase();
  for (const m of markers) {
    // Echoing what the caller sent is not a leak; only what they could not have known is.
    if (!a.maySee.includes(m.kind) && seen.includes(m.value) && !sent.includes(m.value)) {
      reasons.push(`leaked a ${m.kind} marker (${m.value})`);
    }
  }
  for (const part of htmlParts(res)) {
    const s = scriptIn(part.html);
    if (s) reasons.push(`${s} in HTML (${part.where})`);
  }
  return reasons;
}

export interface Runner {
  run(a: Attempt): Promise<LightMyRequestResponse>;
  /**
   * Runs `fn`'s attempts with one snapshot of each tenant before and after (instead of around
   * each): a change is reported against the batch, naming its watched attempts.
   */
  batch(label: string, fn: () => Promise<void>): Promise<void>;
}

/**
 * Runs attempts against `app`, tallies them and records findings. `snapshot` gives a digest of a
 * tenant's state (compared around requests that name it in `watch`).
 */
export function runner(opts: {
  app: () => FastifyInstance;
  db: string;
  markers: () => Inspector['markers'];
  snapshot: (t: 'A' | 'B') => Promise<string>;
}): Runner {
  let open: { before: Record<'A' | 'B', string>; watched: Set<'A' | 'B'>; attempts: Attempt[] } | null = null;
  return {
    async batch(label, fn) {
      if (open) throw new Error('batches do not nest');
      const b = {
        before: { A: await opts.snapshot('A'), B: await opts.snapshot('B') },
        watched: new Set<'A' | 'B'>(),
        attempts: [] as Attempt[],
      };
      open = b;
      try {
        await fn();
      } finally {
        open = null;
      }
      for (const t of b.watched) {
        if ((await opts.snapshot(t)) === b.before[t]) continue;
        tally.succeeded++;
        tally.findings.push({
          db: opts.db,
          cls: b.attempts[0]!.cls,
          principal: 'batch',
          request: label,
          status: 0,
          reasons: [
            `tenant ${t}'s state changed during: ${b.attempts
              .filter((a) => a.watch?.includes(t))
              .slice(0, 8)
              .map((a) => `${a.principal} ${a.method} ${a.url}`)
              .join(' | ')}`,
          ],
          body: '',
        });
      }
    },
    async run(a) {
      const before: Partial<Record<'A' | 'B', string>> = {};
      const batched = open;
      if (batched && a.watch?.length) {
        for (const t of a.watch) batched.watched.add(t);
        batched.attempts.push(a);
      } else for (const t of a.watch ?? []) before[t] = await opts.snapshot(t);
      const isRaw = typeof a.payload === 'string' || Buffer.isBuffer(a.payload);
      const res = await opts.app().inject({
        method: a.method,
        url: a.url,
        headers: a.headers,
        ...(a.payload !== undefined && (isRaw ? { payload: a.payload as string } : { payload: a.payload as object })),
      });
      tally.attempts++;
      tally.byClass[a.cls] = (tally.byClass[a.cls] ?? 0) + 1;
      const reasons = leaksOf(res, a, opts.markers());
      const verdict = a.judge?.(res);
      if (verdict) reasons.unshift(verdict);
      if (!batched) {
        for (const t of a.watch ?? []) {
          if ((await opts.snapshot(t)) !== before[t]) reasons.push(`tenant ${t}'s state changed`);
        }
      }
      if (a.expectRoute && res.statusCode === 404 && /"route_not_found"/.test(res.body)) {
        tally.missedRoutes.push(`${a.method} ${a.url}`);
      }
      const finding = (rs: string[]): Finding => ({
        db: opts.db,
        cls: a.cls,
        principal: a.principal,
        request: `${a.method} ${a.url}`,
        status: res.statusCode,
        reasons: rs,
        body: res.body.slice(0, 300),
        sent:
          typeof a.payload === 'string' ? a.payload.slice(0, 200) : JSON.stringify(a.payload ?? null)?.slice(0, 300),
      });
      if (reasons.length) {
        tally.succeeded++;
        tally.findings.push(finding(reasons));
      }
      return res;
    },
  };
}

export const is2xx = (res: LightMyRequestResponse) => res.statusCode >= 200 && res.statusCode < 300;

export function describeFindings(list: Finding[], max = 40): string {
  const lines = list
    .slice(0, max)
    .map(
      (f) => `[${f.db}] ${f.cls} · ${f.principal} · ${f.request} → ${f.status}: ${f.reasons.join('; ')}\n    ${f.body}`,
    );
  if (list.length > max) lines.push(`… and ${list.length - max} more`);
  return lines.join('\n');
}
