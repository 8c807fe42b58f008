import { randomBytes, randomUUID } from 'node:crypto';
import type { JsonSchema } from '../helpers/json-schema.js';

/**
 * The OpenAPI document as the attack suite reads it: every operation (method + path), its path
 * and query parameters, whether it declares `security`, and a generator of *valid* request bodies
 * from its JSON schema, so that the only thing between an attacker and the operation is
 * authorization.
 */

export type { JsonSchema };

export interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: JsonSchema;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Operation {
  method: Method;
  /** As in the document: `/api/v1/posts/{id}`. */
  path: string;
  /** `GET /api/v1/posts/{id}`. */
  key: string;
  /** Path parameters that really occur in the path (the document lists some that do not). */
  pathParams: string[];
  query: Param[];
  /** The JSON body's schema, when the operation takes one. */
  body?: JsonSchema;
  /** The document lists `security` for the operation: it needs a bearer credential. */
  secured: boolean;
  surface: Surface;
}

/**
 * - `staff`: tenant-scoped /api/v1 routes (the tenant from X-Tenant-ID, host or token);
 * - `tenant-path`: /api/v1/tenants/{id}/… (the tenant in the path);
 * - `global`: /api/v1 routes of no tenant (auth, the caller's tenant list, creating one), health;
 * - `content`: the Ghost Content API (public by design, behind a content key);
 * - `feed`: feeds and discovery documents (public by design).
 */
export type Surface = 'staff' | 'tenant-path' | 'global' | 'content' | 'feed';

interface OpenApiDoc {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}
interface OpenApiOperation {
  security?: unknown[];
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export function surfaceOf(path: string): Surface {
  if (path.startsWith('/ghost/') || /^\/s\/\{tenantSlug\}\/ghost\//.test(path)) return 'content';
  if (
    path.startsWith('/s/{tenantSlug}/') ||
    /^\/(rss\/|atom\.xml|feed\.json|sitemap\.xml|robots\.txt|llms\.txt)$/.test(path)
  )
    return 'feed';
  if (path.startsWith('/api/v1/tenants/{id}')) return 'tenant-path';
  if (path.startsWith('/api/v1/auth/') || path === '/api/v1/tenants' || !path.startsWith('/api/v1/')) return 'global';
  return 'staff';
}

export function readOperations(doc: OpenApiDoc): { ops: Operation[]; resolve: (s: JsonSchema) => JsonSchema } {
  const schemas = doc.components?.schemas ?? {};
  const resolve = (s: JsonSchema): JsonSchema => {
    let cur = s;
    for (let i = 0; i < 10 && cur.$ref; i++) {
      const name = cur.$ref.replace(/^#\/components\/schemas\//, '');
      const next = schemas[name];
      if (!next) throw new Error(`unresolvable $ref ${cur.$ref}`);
      cur = next;
    }
    return cur;
  };
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]!);
      const params = (op.parameters ?? []).map(
        (p): Param => ({
          name: p.name,
          in: p.in as Param['in'],
          required: !!p.required,
          schema: resolve(p.schema ?? {}),
        }),
      );
      const json = op.requestBody?.content?.['application/json']?.schema;
      const method = m.toUpperCase() as Method;
      ops.push({
        method,
        path,
        key: `${method} ${path}`,
        pathParams: inPath,
        query: params.filter((p) => p.in === 'query'),
        body: json ? resolve(json) : undefined,
        secured: Array.isArray(op.security) && op.security.length > 0,
        surface: surfaceOf(path),
      });
    }
  }
  return { ops, resolve };
}

/** The URL of `op` with its path parameters filled (URL-encoded) and a query string. */
export function urlOf(op: Operation, params: Record<string, string>, query: Record<string, string> = {}): string {
  const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${op.key}: no value for {${name}}`);
    return encodeURIComponent(
      v.replace(/[\uD800-\uDFFF]/g, (c, i: number, all: string) => {
        const code = c.charCodeAt(0);
        const pair =
          code < 0xdc00 ? /[\uDC00-\uDFFF]/.test(all[i + 1] ?? '') : /[\uD800-\uDBFF]/.test(all[i - 1] ?? '');
        return pair ? c : '\uFFFD';
      }),
    );
  });
  const qs = new URLSearchParams(query).toString();
  return qs ? `${path}?${qs}` : path;
}

// ---------------------------------------------------------------------------------------------
// Valid values from a schema.

const hex = (n = 4) => randomBytes(n).toString('hex');
export const PROBE_PASSWORD = 'correct horse battery staple';
const future = () => new Date(Date.now() + 30 * 86_400_000).toISOString();

/** By property name first: what a real client would send there. */
const byName: Record<string, () => unknown> = {
  email: () => `probe-${hex()}@example.com`,
  password: () => PROBE_PASSWORD,
  newPassword: () => `${PROBE_PASSWORD} 2`,
  // Never the caller's real password: a generated body must not change anybody's credentials.
  currentPassword: () => 'definitely not the password',
  token: () => randomBytes(32).toString('base64url'),
  refreshToken: () => randomBytes(32).toString('base64url'),
  slug: () => `probe-${hex()}`,
  name: () => 'Security probe',
  title: () => 'Probe title',
  body: () => 'Probe body',
  q: () => 'probe',
  role: () => 'viewer',
  lang: () => 'en',
  timezone: () => 'UTC',
  accentColor: () => '#112233',
  publishAt: future,
  expiresAt: future,
  scopes: () => ['content:read'],
  visibility: () => 'public',
  code: () => '123456',
  domain: () => `probe-${hex()}.example.com`,
  // A loopback issuer: refused (or fails discovery) without the suite ever leaving the machine.
  issuer: () => 'https://127.0.0.1/',
  clientId: () => 'probe-client',
  clientSecret: () => 'probe-secret',
};

/** Properties a generated body leaves out unless required (they need context to be valid). */
// `recoveryCode` is the alternative to `code` (one or the other, never both).
const OPTIONAL_SKIP = new Set([
  'version',
  'authors',
  'tenantId',
  'mode',
  'tags',
  'scopes',
  'expiresAt',
  'recoveryCode',
]);

const stringCandidates = () => [
  'probe',
  `probe-${hex()}`,
  '#112233',
  'en',
  'UTC',
  randomBytes(32).toString('base64url'),
  '123456',
  'https://example.com/probe',
];

function typesOf(s: JsonSchema): string[] {
  if (Array.isArray(s.type)) return s.type;
  if (s.type) return [s.type];
  if (s.properties) return ['object'];
  return [];
}

export interface Generator {
  /** A valid value for `schema` (property `name`), or undefined if it cannot tell. */
  value(schema: JsonSchema, name?: string): unknown;
  /** A valid body for the operation (undefined if it takes none). */
  body(op: Operation): unknown;
  /** The object schema of an operation's body (its non-null branch), if it is an object. */
  objectSchema(op: Operation): JsonSchema | undefined;
  resolve(s: JsonSchema): JsonSchema;
}

export function generator(resolve: (s: JsonSchema) => JsonSchema): Generator {
  const nonNull = (s: JsonSchema): JsonSchema => {
    const r = resolve(s);
    const branches = r.anyOf ?? r.oneOf;
    if (branches) {
      const pick = branches.map(resolve).find((b) => !typesOf(b).includes('null') || typesOf(b).length > 1);
      return pick ? nonNull(pick) : r;
    }
    if (r.allOf?.length) return nonNull(Object.assign({}, ...r.allOf.map(resolve)));
    return r;
  };

  function stringValue(s: JsonSchema, name?: string): string {
    const fits = (v: string) =>
      (!s.pattern || new RegExp(s.pattern, 'u').test(v)) &&
      v.length >= (s.minLength ?? 0) &&
      v.length <= (s.maxLength ?? Number.POSITIVE_INFINITY);
    if (name && byName[name]) {
      const v = byName[name]!();
      if (typeof v === 'string' && fits(v)) return v;
    }
    switch (s.format) {
      case 'email':
        return `probe-${hex()}@example.com`;
      case 'uri':
      case 'url':
        return 'https://example.com/probe.png';
      case 'uuid':
        return randomUUID();
      case 'date-time':
        return future();
      case 'date':
        return future().slice(0, 10);
    }
    for (const c of stringCandidates()) if (fits(c)) return c;
    return 'x'.repeat(Math.max(1, s.minLength ?? 1));
  }

  function value(schema: JsonSchema, name?: string): unknown {
    const s = nonNull(schema);
    if (s.const !== undefined) return s.const;
    if (s.enum?.length) {
      if (name === 'role' && s.enum.includes('viewer')) return 'viewer';
      if (name === 'visibility' && s.enum.includes('public')) return 'public';
      return s.enum[0];
    }
    const t = typesOf(s)[0];
    if (name && byName[name] && t !== 'string' && t !== undefined) {
      const v = byName[name]!();
      if (t === 'array' && Array.isArray(v)) return v;
    }
    switch (t) {
      case 'string':
        return stringValue(s, name);
      case 'integer':
      case 'number':
        return Math.max(1, s.minimum ?? 1);
      case 'boolean':
        return false;
      case 'array': {
        const n = Math.max(1, s.minItems ?? 1);
        return Array.from({ length: n }, () => value(s.items ?? { type: 'string' }, name));
      }
      case 'object':
        return objectValue(s);
      default:
        return undefined;
    }
  }

  function objectValue(s: JsonSchema): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const required = new Set(s.required ?? []);
    for (const [k, raw] of Object.entries(s.properties ?? {})) {
      const p = nonNull(raw);
      const t = typesOf(p)[0];
      const isRequired = required.has(k);
      if (!isRequired) {
        if (OPTIONAL_SKIP.has(k)) continue;
        // Optional: only what needs no context (text, flags, enums).
        if (t !== 'string' && t !== 'boolean') continue;
      }
      const v = value(raw, k);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }

  function objectSchema(op: Operation): JsonSchema | undefined {
    if (!op.body) return undefined;
    const s = nonNull(op.body);
    return typesOf(s).includes('object') ? s : undefined;
  }

  return {
    value,
    body(op) {
      if (!op.body) return undefined;
      const s = objectSchema(op);
      return s ? objectValue(s) : value(op.body);
    },
    objectSchema,
    resolve,
  };
}

/** The names of an object schema's string-valued properties (strings, string arrays, nullable strings). */
export function stringFields(gen: Generator, s: JsonSchema): Array<{ name: string; array: boolean }> {
  const out: Array<{ name: string; array: boolean }> = [];
  for (const [k, raw] of Object.entries(s.properties ?? {})) {
    const r = gen.resolve(raw);
    const branches = (r.anyOf ?? r.oneOf ?? [r]).map(gen.resolve);
    for (const b of branches) {
      const t = typesOf(b);
      if (t.includes('string')) {
        out.push({ name: k, array: false });
        break;
      }
      if (t.includes('array') && b.items && typesOf(gen.resolve(b.items)).includes('string')) {
        out.push({ name: k, array: true });
        break;
      }
    }
  }
  return out;
}
