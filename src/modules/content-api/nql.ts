import nql, { type Token } from '@tryghost/nql-lang';
import { type SQL, sql } from 'drizzle-orm';

/**
 * Ghost's NQL filter language (the Content API's `?filter=`) compiled to a parameterized SQL
 * condition against an allow-list of fields. @tryghost/nql-lang parses the filter into a
 * Mongo-style JSON query; this walks that tree and builds drizzle SQL in which every value is
 * a bound parameter and every field name only selects an entry of the allow-list.
 */

export type NqlType = 'string' | 'boolean' | 'date' | 'number' | 'uuid';

export interface NqlField {
  type: NqlType;
  /**
   * A column (or any scalar SQL expression) the value is compared with directly. Values are
   * bound as parameters typed by the expression, so an enum column should be given as text
   * (`sql\`${col}::text\``); number values are bound as `numeric`, dates as `timestamptz`.
   */
  column?: SQL;
  /**
   * A to-many relation (a post's tags or authors): `some(pred)` must return an SQL
   * `exists (select 1 from … where <join> and ${pred(relatedColumn)})`. Positive conditions
   * compile to some(...), negative ones ($ne, $nin) to `not (some(...))` so `tag:-x` means
   * "has no tag x", not "has a tag other than x". `tag:null` means "has no tags at all"
   * (not some(true)); `tag:-null` means some(true).
   */
  some?: (pred: (col: SQL) => SQL) => SQL;
}

export type NqlFields = Record<string, NqlField>;

export class NqlError extends Error {
  constructor(
    readonly code: 'filter_parse_error' | 'unknown_filter_field' | 'invalid_filter_value' | 'filter_too_complex',
    message: string,
  ) {
    super(message);
    this.name = 'NqlError';
  }
}

const MAX_LENGTH = 2000;
const MAX_CONDITIONS = 50;
const MAX_LIST_VALUES = 200;
const MAX_DEPTH = 10;

interface Budget {
  conditions: number;
  listValues: number;
}

/** Compiles `filter` to a boolean SQL condition; throws NqlError on anything it cannot compile safely. */
export function compileNql(filter: string, fields: NqlFields): SQL {
  if (typeof filter !== 'string') throw parseError('the filter must be a string');
  if (filter.length > MAX_LENGTH) throw tooComplex(`the filter is longer than ${MAX_LENGTH} characters`);
  return compileNode(parse(filter), fields, 0, { conditions: 0, listValues: 0 });
}

function parse(filter: string): unknown {
  let tree: unknown;
  let tokens: Token[];
  try {
    tree = nql.parse(filter);
    tokens = nql.lex(filter);
  } catch (err) {
    // The parser's message is several lines: a summary, the filter, a caret line, the expected
    // tokens. Only the summary goes out.
    const first = err instanceof Error ? (err.message.split('\n')[0] ?? '') : '';
    const reason = first
      .replace(/^Query Error: /, '')
      .replace(' in filter', '')
      .replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ')
      .slice(0, 200);
    throw parseError(reason || 'unreadable filter');
  }
  // nql-lang reads an unquoted number with parseInt: `reading_time:<1.5` would silently become
  // `reading_time:<1`. A quoted '1.5' is a string, which number fields accept.
  if (tokens.some((t) => t.token === 'NUMBER' && t.matched.includes('.'))) {
    throw new NqlError('invalid_filter_value', "Decimal numbers in a filter must be quoted, e.g. '1.5'");
  }
  return tree;
}

function compileNode(node: unknown, fields: NqlFields, depth: number, budget: Budget): SQL {
  const [key, value] = single(node);
  if (key === '$and' || key === '$or') {
    if (!Array.isArray(value) || value.length === 0) throw parseError(`malformed ${key}`);
    const inner = deeper(depth);
    const parts = value.map((child) => compileNode(child, fields, inner, budget));
    return parts.length === 1 ? parts[0]! : sql`(${sql.join(parts, sql.raw(key === '$and' ? ' and ' : ' or '))})`;
  }
  // nql-lang wraps a parenthesised group in `{ yg: … }` and unwraps it only where it sits
  // directly in an and/or or at the top: `((a))` and `b+((a))` leave one behind. A field's
  // value is never an object with a field (or $and/$or) key, so this cannot be a field `yg`.
  if (key === 'yg' && isGroup(value)) return compileNode(value, fields, deeper(depth), budget);
  if (!Object.hasOwn(fields, key)) throw new NqlError('unknown_filter_field', `Unknown filter field "${key}"`);
  if (++budget.conditions > MAX_CONDITIONS) throw tooComplex(`more than ${MAX_CONDITIONS} conditions`);
  return compileCondition(key, fields[key]!, value, budget);
}

type Target = { kind: 'column'; col: SQL } | { kind: 'relation'; some: (pred: (col: SQL) => SQL) => SQL };

// Fresh objects each time: a caller may append to what it gets back.
const TRUE = () => sql`true`;
const FALSE = () => sql`false`;
const COMPARISONS: Record<string, string> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

function compileCondition(name: string, field: NqlField, value: unknown, budget: Budget): SQL {
  if ((field.column === undefined) === (field.some === undefined)) {
    throw new Error(`NQL field "${name}" must set exactly one of column and some`);
  }
  const t: Target = field.column ? { kind: 'column', col: field.column } : { kind: 'relation', some: field.some! };
  // A bare value is an equality; an object holds exactly one operator.
  if (!isPlainObject(value)) return equality(t, name, field.type, value, false);
  const [op, operand] = single(value);

  switch (op) {
    case '$ne':
      return equality(t, name, field.type, operand, true);
    case '$in':
    case '$nin':
    case '$all': {
      if (!Array.isArray(operand)) throw parseError(`malformed ${op}`);
      budget.listValues += operand.length;
      if (budget.listValues > MAX_LIST_VALUES) throw tooComplex(`more than ${MAX_LIST_VALUES} values in lists`);
      if (op === '$all') {
        return group(
          operand.map((v) => equality(t, name, field.type, v, false)),
          ' and ',
        );
      }
      return list(t, name, field.type, operand, op === '$nin');
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      if (field.type === 'boolean') throw invalidValue(name, `cannot be compared with ${COMPARISONS[op]}`);
      if (operand === null) throw invalidValue(name, `cannot be compared with null using ${COMPARISONS[op]}`);
      const v = coerce(name, field.type, operand);
      if (v === NO_MATCH) throw invalidValue(name, 'expected a UUID');
      const p = bind(field.type, v);
      const cmp = sql.raw(COMPARISONS[op]!);
      return has(t, (c) => sql`${c} ${cmp} ${p}`);
    }
    case '$regex':
    case '$not': {
      if (!(operand instanceof RegExp)) throw parseError(`malformed ${op}`);
      if (field.type !== 'string') throw invalidValue(name, 'only text fields can be matched with ~, ~^ or ~$');
      const pattern = likePattern(operand);
      const pred = (c: SQL) => sql`${c} ilike ${pattern}`;
      return op === '$regex' ? has(t, pred) : hasNot(t, pred, (c) => sql`(${c} is null or ${c} not ilike ${pattern})`);
    }
    default:
      throw parseError(`unsupported operator ${op.slice(0, 20)}`);
  }
}

/** field = value (or, negated, "field is not value", which holds for a null column / no related rows). */
function equality(t: Target, name: string, type: NqlType, operand: unknown, negate: boolean): SQL {
  if (operand === null) return negate ? notNull(t) : isNull(t);
  const v = coerce(name, type, operand);
  if (v === NO_MATCH) return negate ? TRUE() : FALSE();
  const p = bind(type, v);
  const pred = (c: SQL) => sql`${c} = ${p}`;
  return negate ? hasNot(t, pred, (c) => sql`${c} is distinct from ${p}`) : has(t, pred);
}

function list(t: Target, name: string, type: NqlType, operand: unknown[], negate: boolean): SQL {
  const withNull = operand.includes(null);
  const params: SQL[] = [];
  for (const item of operand) {
    if (item === null) continue;
    const v = coerce(name, type, item);
    if (v !== NO_MATCH) params.push(bind(type, v));
  }
  const values = sql.join(params, sql`, `);
  const parts: SQL[] = [];
  if (negate) {
    if (params.length > 0) {
      parts.push(
        hasNot(
          t,
          (c) => sql`${c} in (${values})`,
          (c) => (withNull ? sql`${c} not in (${values})` : sql`(${c} is null or ${c} not in (${values}))`),
        ),
      );
    }
    if (withNull) parts.push(notNull(t));
    return parts.length === 0 ? TRUE() : group(parts, ' and ');
  }
  if (params.length > 0) parts.push(has(t, (c) => sql`${c} in (${values})`));
  if (withNull) parts.push(isNull(t));
  return parts.length === 0 ? FALSE() : group(parts, ' or ');
}

function has(t: Target, pred: (col: SQL) => SQL): SQL {
  return t.kind === 'column' ? pred(t.col) : t.some(pred);
}

/** The negation: for a relation "no related row satisfies pred"; for a column `colNeg`, which counts null as not matching. */
function hasNot(t: Target, pred: (col: SQL) => SQL, colNeg: (col: SQL) => SQL): SQL {
  return t.kind === 'column' ? colNeg(t.col) : sql`not (${t.some(pred)})`;
}

function isNull(t: Target): SQL {
  return t.kind === 'column' ? sql`${t.col} is null` : sql`not (${t.some(() => TRUE())})`;
}

function notNull(t: Target): SQL {
  return t.kind === 'column' ? sql`${t.col} is not null` : t.some(() => TRUE());
}

function group(parts: SQL[], joiner: ' and ' | ' or '): SQL {
  if (parts.length === 0) return joiner === ' and ' ? TRUE() : FALSE();
  return parts.length === 1 ? parts[0]! : sql`(${sql.join(parts, sql.raw(joiner))})`;
}

function bind(type: NqlType, v: string | number | boolean | Date): SQL {
  // Explicit types: an integer column compared with 1.5 must not make PostgreSQL parse '1.5' as
  // an integer parameter.
  if (type === 'number') return sql`${v}::numeric`;
  if (type === 'date') return sql`${v}::timestamptz`;
  return sql`${v}`;
}

const NO_MATCH = Symbol('no match');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMERIC = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;
/** nql-lang's relative dates ('YYYY-MM-DD HH:mm:ss', UTC) and other ISO date-times without a zone. */
const ZONELESS = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)$/;

function coerce(name: string, type: NqlType, value: unknown): string | number | boolean | Date | typeof NO_MATCH {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      throw invalidValue(name, 'expected text');
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      throw invalidValue(name, 'expected true or false');
    case 'number': {
      const n = typeof value === 'string' && NUMERIC.test(value.trim()) ? Number(value.trim()) : value;
      if (typeof n === 'number' && Number.isFinite(n)) return n;
      throw invalidValue(name, 'expected a number');
    }
    case 'date': {
      if (typeof value === 'string') {
        const m = ZONELESS.exec(value.trim());
        const d = new Date(m ? `${m[1]}T${m[2]}Z` : value.trim());
        const year = d.getUTCFullYear();
        // Years PostgreSQL and the drivers serialize without surprises.
        if (!Number.isNaN(d.getTime()) && year >= 1 && year <= 9999) return d;
      }
      throw invalidValue(name, 'expected a date');
    }
    case 'uuid':
      return typeof value === 'string' && UUID.test(value) ? value : NO_MATCH;
  }
}

const REGEX_META = new Set('.*+?^$(){}|[]\\/'.split(''));
const SOURCE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', u2028: '\u2028', u2029: '\u2029' };

/**
 * nql-lang turns `~'x'`, `~^'x'` and `~$'x'` into a case-insensitive RegExp of the escaped text,
 * anchored with ^ or $. This reads that shape back into an ILIKE pattern (with %, _ and \
 * escaped) and refuses any other regular expression.
 */
function likePattern(re: RegExp): string {
  const bad = () => parseError('unsupported pattern');
  if (re.flags !== 'i') throw bad();
  let src = re.source;
  let prefix = '%';
  let suffix = '%';
  if (src.startsWith('^')) {
    prefix = '';
    src = src.slice(1);
  }
  let text = '';
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '\\') {
      const next = src[i + 1] ?? '';
      const unicode = src.slice(i + 1, i + 6);
      if (REGEX_META.has(next)) {
        text += next;
        i += 1;
      } else if (next === 'n' || next === 'r') {
        text += SOURCE_ESCAPES[next];
        i += 1;
      } else if (unicode === 'u2028' || unicode === 'u2029') {
        text += SOURCE_ESCAPES[unicode];
        i += 5;
      } else {
        throw bad();
      }
    } else if (ch === '$' && i === src.length - 1 && prefix === '%') {
      suffix = '';
    } else if (REGEX_META.has(ch)) {
      throw bad();
    } else {
      text += ch;
    }
  }
  if (text === '') throw bad();
  return `${prefix}${text.replace(/[\\%_]/g, '\\$&')}${suffix}`;
}

function single(node: unknown): [string, unknown] {
  if (!isPlainObject(node)) throw parseError('malformed filter');
  const keys = Object.keys(node);
  if (keys.length !== 1) throw parseError('malformed filter');
  return [keys[0]!, node[keys[0]!]];
}

function isGroup(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === '$and' || keys[0] === '$or' || !keys[0]!.startsWith('$'));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function deeper(depth: number): number {
  if (depth + 1 > MAX_DEPTH) throw tooComplex(`groups nested more than ${MAX_DEPTH} deep`);
  return depth + 1;
}

const parseError = (reason: string) => new NqlError('filter_parse_error', `Cannot parse filter: ${reason}`);
const tooComplex = (reason: string) => new NqlError('filter_too_complex', `Filter is too complex: ${reason}`);
const invalidValue = (name: string, reason: string) =>
  new NqlError('invalid_filter_value', `Invalid value for filter field "${name}": ${reason}`);
