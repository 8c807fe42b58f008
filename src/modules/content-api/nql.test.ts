import nql from '@tryghost/nql-lang';
import { type SQL, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileNql, NqlError, type NqlFields } from './nql.js';

const tagSome = (pred: (col: SQL) => SQL) =>
  sql`exists (select 1 from post_tags pt join tags t on t.id = pt.tag_id where pt.post_id = posts.id and ${pred(sql`t.slug`)})`;
const authorIdSome = (pred: (col: SQL) => SQL) =>
  sql`exists (select 1 from post_authors pa where pa.post_id = posts.id and ${pred(sql`pa.user_id`)})`;

/** `column` is an SQL; a bare identifier is a Name, so it goes in a template. */
const col = (name: string) => sql`${sql.identifier(name)}`;

const fields: NqlFields = {
  slug: { type: 'string', column: col('slug') },
  title: { type: 'string', column: col('title') },
  feature_image: { type: 'string', column: col('feature_image') },
  featured: { type: 'boolean', column: col('featured') },
  published_at: { type: 'date', column: col('published_at') },
  reading_time: { type: 'number', column: col('reading_time') },
  id: { type: 'uuid', column: col('id') },
  // Aliases are just several names for one thing.
  tag: { type: 'string', some: tagSome },
  tags: { type: 'string', some: tagSome },
  'tags.slug': { type: 'string', some: tagSome },
  'authors.id': { type: 'uuid', some: authorIdSome },
};

const dialect = new PgDialect();
const q = (filter: string) => {
  const { sql: text, params } = dialect.sqlToQuery(compileNql(filter, fields));
  return { sql: text, params };
};
/** The SQL the tag relation renders for `pred`. */
const TAG = (pred: string) =>
  `exists (select 1 from post_tags pt join tags t on t.id = pt.tag_id where pt.post_id = posts.id and ${pred})`;
const UUID = '0b6a1f9e-3c55-4c1e-9d43-5b1f0e2a7c10';

function errorOf(filter: string): NqlError {
  try {
    compileNql(filter, fields);
  } catch (err) {
    if (err instanceof NqlError) return err;
    throw err;
  }
  throw new Error(`expected ${filter} to be refused`);
}

describe('compileNql: comparisons on columns', () => {
  it.each([
    ['slug:hello', '"slug" = $1', ['hello']],
    ["title:'Hello, world'", '"title" = $1', ['Hello, world']],
    ['slug:2024', '"slug" = $1', ['2024']],
    ['featured:true', '"featured" = $1', [true]],
    ['featured:false', '"featured" = $1', [false]],
    ["featured:'true'", '"featured" = $1', [true]],
    ['reading_time:5', '"reading_time" = $1::numeric', [5]],
    ["reading_time:'2.5'", '"reading_time" = $1::numeric', [2.5]],
    [`id:${UUID}`, '"id" = $1', [UUID]],
    ['slug:-hello', '"slug" is distinct from $1', ['hello']],
    ['featured:-true', '"featured" is distinct from $1', [true]],
    ['slug:[news,tips]', '"slug" in ($1, $2)', ['news', 'tips']],
    ['slug:-[news,tips]', '("slug" is null or "slug" not in ($1, $2))', ['news', 'tips']],
    ['slug:[news,null]', '("slug" in ($1) or "slug" is null)', ['news']],
    ['slug:-[news,null]', '("slug" not in ($1) and "slug" is not null)', ['news']],
    ['slug:[null]', '"slug" is null', []],
    ['reading_time:[1,2]', '"reading_time" in ($1::numeric, $2::numeric)', [1, 2]],
    ['slug:[news+tips]', '("slug" = $1 and "slug" = $2)', ['news', 'tips']],
    ['reading_time:>5', '"reading_time" > $1::numeric', [5]],
    ['reading_time:>=5', '"reading_time" >= $1::numeric', [5]],
    ['reading_time:<5', '"reading_time" < $1::numeric', [5]],
    ["reading_time:<='5.5'", '"reading_time" <= $1::numeric', [5.5]],
    ['slug:>mm', '"slug" > $1', ['mm']],
    [`id:>=${UUID}`, '"id" >= $1', [UUID]],
    ['feature_image:null', '"feature_image" is null', []],
    ['feature_image:-null', '"feature_image" is not null', []],
  ])('%s → %s', (filter, text, params) => {
    expect(q(filter)).toEqual({ sql: text, params });
  });

  it.each([
    ["slug:~'ab'", '"slug" ilike $1', ['%ab%']],
    ["slug:~^'ab'", '"slug" ilike $1', ['ab%']],
    ["slug:~$'ab'", '"slug" ilike $1', ['%ab']],
    ["slug:-~'ab'", '("slug" is null or "slug" not ilike $1)', ['%ab%']],
    ["slug:-~^'ab'", '("slug" is null or "slug" not ilike $1)', ['ab%']],
    ["slug:-~$'ab'", '("slug" is null or "slug" not ilike $1)', ['%ab']],
    // LIKE wildcards and the escape character in the text are escaped; regex metacharacters are plain text.
    ["slug:~'50%_off'", '"slug" ilike $1', ['%50\\%\\_off%']],
    ["slug:~'back\\\\slash'", '"slug" ilike $1', ['%back\\\\\\\\slash%']],
    ["slug:~'a.b*c(d)[e]^f$g/h'", '"slug" ilike $1', ['%a.b*c(d)[e]^f$g/h%']],
    ["title:~'it\\'s'", '"title" ilike $1', ["%it's%"]],
  ])('%s → %s (contains / starts / ends with, case-insensitive)', (filter, text, params) => {
    expect(q(filter)).toEqual({ sql: text, params });
  });
});

describe('compileNql: and, or and groups', () => {
  it.each([
    ['featured:true+slug:hello', '("featured" = $1 and "slug" = $2)'],
    ['slug:news,slug:tips', '("slug" = $1 or "slug" = $2)'],
    // `+` binds tighter than `,`.
    ['slug:news,slug:tips+featured:true', '("slug" = $1 or ("slug" = $2 and "featured" = $3))'],
    ['featured:true+(slug:news,slug:tips)', '("featured" = $1 and ("slug" = $2 or "slug" = $3))'],
    ['(featured:true+slug:news),slug:tips', '(("featured" = $1 and "slug" = $2) or "slug" = $3)'],
    ['slug:news+slug:tips+featured:true', '("slug" = $1 and "slug" = $2 and "featured" = $3)'],
    ['slug:news,slug:tips,featured:true', '("slug" = $1 or "slug" = $2 or "featured" = $3)'],
    // Double parentheses leave a `{ yg: … }` wrapper in nql-lang's output.
    ['((slug:news))', '"slug" = $1'],
    ['featured:true+((slug:news,slug:tips))', '("featured" = $1 and ("slug" = $2 or "slug" = $3))'],
  ])('%s → %s', (filter, text) => {
    expect(q(filter).sql).toBe(text);
  });

  it('binds parameters in the order they appear', () => {
    expect(q('(featured:true+slug:news),slug:tips').params).toEqual([true, 'news', 'tips']);
  });

  it('returns a condition that keeps its meaning when ANDed with another', () => {
    const cond = compileNql('slug:news,slug:tips', fields);
    expect(dialect.sqlToQuery(sql`${sql.identifier('tenant_id')} = ${1} and ${cond}`).sql).toBe(
      '"tenant_id" = $1 and ("slug" = $2 or "slug" = $3)',
    );
  });
});

describe('compileNql: to-many relations', () => {
  it.each([
    ['tag:news', TAG('t.slug = $1'), ['news']],
    ['tags:news', TAG('t.slug = $1'), ['news']],
    ['tags.slug:news', TAG('t.slug = $1'), ['news']],
    // Has no tag news (a post without tags qualifies), not "has some tag other than news".
    ['tag:-news', `not (${TAG('t.slug = $1')})`, ['news']],
    ['tag:[news,tips]', TAG('t.slug in ($1, $2)'), ['news', 'tips']],
    ['tag:-[news,tips]', `not (${TAG('t.slug in ($1, $2)')})`, ['news', 'tips']],
    ['tag:null', `not (${TAG('true')})`, []],
    ['tag:-null', TAG('true'), []],
    ['tag:[news,null]', `(${TAG('t.slug in ($1)')} or not (${TAG('true')}))`, ['news']],
    ['tag:-[news,null]', `(not (${TAG('t.slug in ($1)')}) and ${TAG('true')})`, ['news']],
    ['tag:[news+tips]', `(${TAG('t.slug = $1')} and ${TAG('t.slug = $2')})`, ['news', 'tips']],
    ['tag:>news', TAG('t.slug > $1'), ['news']],
    ["tag:~'ew'", TAG('t.slug ilike $1'), ['%ew%']],
    ["tag:-~^'ne'", `not (${TAG('t.slug ilike $1')})`, ['ne%']],
  ])('%s', (filter, text, params) => {
    expect(q(filter)).toEqual({ sql: text, params });
  });

  it('combines relation conditions with column conditions', () => {
    expect(q('featured:true+(tag:news,tag:-tips)')).toEqual({
      sql: `("featured" = $1 and (${TAG('t.slug = $2')} or not (${TAG('t.slug = $3')})))`,
      params: [true, 'news', 'tips'],
    });
  });
});

describe('compileNql: uuid fields', () => {
  const AUTHOR = (pred: string) => `exists (select 1 from post_authors pa where pa.post_id = posts.id and ${pred})`;

  it.each([
    // A value that is not a UUID matches nothing: it never reaches PostgreSQL as a cast error.
    ['id:nope', 'false', []],
    ['id:-nope', 'true', []],
    ['id:12345', 'false', []],
    ['id:[nope,nada]', 'false', []],
    ['id:-[nope,nada]', 'true', []],
    [`id:[nope,${UUID}]`, '"id" in ($1)', [UUID]],
    [`id:-[nope,${UUID}]`, '("id" is null or "id" not in ($1))', [UUID]],
    ['id:[nope,null]', '"id" is null', []],
    ['id:null', '"id" is null', []],
    [`authors.id:${UUID}`, AUTHOR('pa.user_id = $1'), [UUID]],
    [`authors.id:-${UUID}`, `not (${AUTHOR('pa.user_id = $1')})`, [UUID]],
    ['authors.id:nope', 'false', []],
    ['authors.id:-nope', 'true', []],
  ])('%s → %s', (filter, text, params) => {
    expect(q(filter)).toEqual({ sql: text, params });
  });

  it.each(['id:>nope', 'id:<=nope', 'authors.id:>nope'])('refuses an ordering comparison with a non-UUID: %s', (f) => {
    expect(errorOf(f).code).toBe('invalid_filter_value');
  });
});

describe('compileNql: dates', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    ["published_at:>'2020-01-01'", '"published_at" > $1::timestamptz', '2020-01-01T00:00:00.000Z'],
    ['published_at:>=2020-01-01', '"published_at" >= $1::timestamptz', '2020-01-01T00:00:00.000Z'],
    // 'YYYY-MM-DD HH:mm:ss' (what relative dates become) is UTC, whatever the server's zone.
    ["published_at:<'2020-06-01 10:30:00'", '"published_at" < $1::timestamptz', '2020-06-01T10:30:00.000Z'],
    ["published_at:<='2020-06-01T10:30:00+02:00'", '"published_at" <= $1::timestamptz', '2020-06-01T08:30:00.000Z'],
    ["published_at:'2020-06-01T10:30:00Z'", '"published_at" = $1::timestamptz', '2020-06-01T10:30:00.000Z'],
  ])('%s', (filter, text, iso) => {
    const { sql: s, params } = q(filter);
    expect(s).toBe(text);
    expect(params).toEqual([new Date(iso)]);
  });

  it.each([
    ['published_at:>now-30d', '2024-02-01T12:00:00.000Z'],
    ['published_at:>now-1w', '2024-02-24T12:00:00.000Z'],
    ['published_at:<now+2h', '2024-03-02T14:00:00.000Z'],
    ['published_at:>now-1M', '2024-02-02T12:00:00.000Z'],
  ])('resolves %s against the current UTC time', (filter, iso) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-03-02T12:00:00Z'));
    const { params } = q(filter);
    expect(params).toEqual([new Date(iso)]);
  });

  it('takes null as "not set"', () => {
    expect(q('published_at:null').sql).toBe('"published_at" is null');
    expect(q('published_at:-null').sql).toBe('"published_at" is not null');
  });
});

describe('compileNql: values never become SQL text', () => {
  it.each([
    ["title:'\\'; drop table posts; --'", '"title" = $1', ["'; drop table posts; --"]],
    ["slug:'x\\' or \\'1\\'=\\'1'", '"slug" = $1', ["x' or '1'='1"]],
    ["title:'Robert\\'); DROP TABLE students;--'", '"title" = $1', ["Robert'); DROP TABLE students;--"]],
    // nql-lang unescapes only quotes: other backslashes stay in the value.
    ["slug:'back\\\\slash'", '"slug" = $1', ['back\\\\slash']],
    ['slug:back\\slash', '"slug" = $1', ['back\\slash']],
    ["slug:'$1 $$ :name ?'", '"slug" = $1', ['$1 $$ :name ?']],
    ["tag:'\\'; delete from tags; --'", TAG('t.slug = $1'), ["'; delete from tags; --"]],
    ["slug:~'\\'; drop table posts; --'", '"slug" ilike $1', ["%'; drop table posts; --%"]],
    ["slug:~'%'", '"slug" ilike $1', ['%\\%%']],
    ["slug:~^'_'", '"slug" ilike $1', ['\\_%']],
    ["slug:[news,'\\') or true --']", '"slug" in ($1, $2)', ['news', "') or true --"]],
  ])('%s', (filter, text, params) => {
    expect(q(filter)).toEqual({ sql: text, params });
  });
});

describe('compileNql: refusals', () => {
  it.each([
    ['nope:hello', 'nope'],
    ['__proto__:hello', '__proto__'],
    ['constructor:hello', 'constructor'],
    ['toString:hello', 'toString'],
    ['hasOwnProperty:hello', 'hasOwnProperty'],
    ['posts.slug:hello', 'posts.slug'],
    ['featured:true+(slug:news,unknown_field:tips)', 'unknown_field'],
  ])('unknown field %s → unknown_filter_field', (filter, name) => {
    const err = errorOf(filter);
    expect(err.code).toBe('unknown_filter_field');
    expect(err.message).toBe(`Unknown filter field "${name}"`);
  });

  it.each([
    ['tag:', 'Cannot parse filter: unexpected character at char 1'],
    // nql-lang reports where the last token it read starts, not the end of the input.
    ['(slug:news', 'Cannot parse filter: unexpected character at char 7'],
    ['slug:news slug:tips', 'Cannot parse filter: unexpected character at char 6'],
    ['slug:"news"', 'Cannot parse filter: unrecognized text """ at char 6'],
    ['slug:[]', 'Cannot parse filter: unexpected character at char 6'],
    ['slug:~news', 'Cannot parse filter: unexpected character at char 6'],
    ['$where:news', 'Cannot parse filter: unexpected character at char 1'],
    ['', 'Cannot parse filter: unexpected character at char 1'],
  ])('parse error %s → one line, no caret art', (filter, message) => {
    const err = errorOf(filter);
    expect(err.code).toBe('filter_parse_error');
    expect(err.message).toBe(message);
    expect(err.message).not.toMatch(/\n|\^|---/);
  });

  it.each([
    ['featured:yes', 'expected true or false'],
    ['featured:1', 'expected true or false'],
    ['featured:>true', 'cannot be compared with >'],
    ['featured:<=false', 'cannot be compared with <='],
    ["featured:~'tr'", 'only text fields can be matched with ~, ~^ or ~$'],
    ['reading_time:many', 'expected a number'],
    ["reading_time:'0x10'", 'expected a number'],
    ["reading_time:'1e999'", 'expected a number'],
    ['reading_time:true', 'expected a number'],
    ['reading_time:[1,two]', 'expected a number'],
    ['reading_time:>null', 'cannot be compared with null using >'],
    ["published_at:>'not a date'", 'expected a date'],
    ["published_at:>'2020-13-45'", 'expected a date'],
    ['published_at:>2020', 'expected a date'],
    ['published_at:true', 'expected a date'],
    ["published_at:'0000-01-01'", 'expected a date'],
    ['slug:true', 'expected text'],
    [`id:~'${UUID.slice(0, 8)}'`, 'only text fields can be matched with ~, ~^ or ~$'],
  ])('invalid value %s', (filter, reason) => {
    const err = errorOf(filter);
    expect(err.code).toBe('invalid_filter_value');
    expect(err.message).toMatch(/^Invalid value for filter field "[a-z_.]+": /);
    expect(err.message.endsWith(reason)).toBe(true);
  });

  it('refuses an unquoted decimal, which nql-lang would truncate to an integer', () => {
    expect(nql.parse('reading_time:1.5')).toEqual({ reading_time: 1 });
    expect(errorOf('reading_time:1.5').code).toBe('invalid_filter_value');
    expect(errorOf('slug:[news,2.5]').code).toBe('invalid_filter_value');
  });
});

describe('compileNql: cost bounds', () => {
  const leaves = (n: number, op = ',') => Array.from({ length: n }, (_, i) => `slug:s${i}`).join(op);
  const list = (n: number, from = 0) => `slug:[${Array.from({ length: n }, (_, i) => `s${from + i}`).join(',')}]`;
  // Alternating operators, so every parenthesis is a real level: depth n has n nested and/or nodes.
  const nested = (n: number): string => (n === 1 ? 'slug:aa,slug:bb' : `slug:aa${n % 2 ? ',' : '+'}(${nested(n - 1)})`);

  it('bounds the length at 2000 characters', () => {
    expect(q(`slug:${'x'.repeat(1995)}`).params).toEqual(['x'.repeat(1995)]);
    const err = errorOf(`slug:${'x'.repeat(1996)}`);
    expect(err.code).toBe('filter_too_complex');
    expect(err.message).toBe('Filter is too complex: the filter is longer than 2000 characters');
  });

  it('bounds the number of conditions at 50', () => {
    expect(q(leaves(50)).params).toHaveLength(50);
    expect(q(leaves(25, '+')).params).toHaveLength(25);
    expect(errorOf(leaves(51)).code).toBe('filter_too_complex');
    expect(errorOf(`${leaves(26, '+')},(${leaves(25, '+')})`).message).toBe(
      'Filter is too complex: more than 50 conditions',
    );
  });

  it('bounds the values in all lists at 200', () => {
    expect(q(list(200)).params).toHaveLength(200);
    expect(q(`${list(100)}+${list(100, 100)}`).params).toHaveLength(200);
    expect(errorOf(list(201)).code).toBe('filter_too_complex');
    const err = errorOf(`${list(100)}+tag:-${list(101, 100).slice(5)}`);
    expect(err.code).toBe('filter_too_complex');
    expect(err.message).toBe('Filter is too complex: more than 200 values in lists');
  });

  it('bounds nesting at 10 levels', () => {
    expect(q(nested(10)).params).toHaveLength(11);
    const err = errorOf(nested(11));
    expect(err.code).toBe('filter_too_complex');
    expect(err.message).toBe('Filter is too complex: groups nested more than 10 deep');
    // Redundant parentheses count too (nql-lang keeps all but one of them).
    expect(q(`${'('.repeat(11)}slug:aa${')'.repeat(11)}`).sql).toBe('"slug" = $1');
    expect(errorOf(`${'('.repeat(12)}slug:aa${')'.repeat(12)}`).code).toBe('filter_too_complex');
  });
});

describe('compileNql: trees nql-lang does not produce are refused', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const withTree = (tree: unknown) => {
    vi.spyOn(nql, 'parse').mockReturnValue(tree);
    return errorOf('slug:placeholder');
  };

  it.each([
    [{ $where: 'sleep(10)' }, 'unknown_filter_field', 'Unknown filter field "$where"'],
    [{ $nor: [{ slug: 'aa' }] }, 'unknown_filter_field', 'Unknown filter field "$nor"'],
    [{ $and: [{ slug: 'aa' }, { $expr: {} }] }, 'unknown_filter_field', 'Unknown filter field "$expr"'],
    [JSON.parse('{"__proto__": "aa"}'), 'unknown_filter_field', 'Unknown filter field "__proto__"'],
    [{ slug: { $exists: true } }, 'filter_parse_error', 'Cannot parse filter: unsupported operator $exists'],
    [{ slug: { $eq: 'aa' } }, 'filter_parse_error', 'Cannot parse filter: unsupported operator $eq'],
    [{ slug: { $ne: 'aa', $gt: 'bb' } }, 'filter_parse_error', 'Cannot parse filter: malformed filter'],
    [{ slug: { $regex: /a.*b/i } }, 'filter_parse_error', 'Cannot parse filter: unsupported pattern'],
    [{ slug: { $regex: /^ab$/i } }, 'filter_parse_error', 'Cannot parse filter: unsupported pattern'],
    [{ slug: { $regex: /ab/ } }, 'filter_parse_error', 'Cannot parse filter: unsupported pattern'],
    [{ slug: { $regex: 'ab' } }, 'filter_parse_error', 'Cannot parse filter: malformed $regex'],
    [{ slug: { $in: 'ab' } }, 'filter_parse_error', 'Cannot parse filter: malformed $in'],
    [{ $or: [] }, 'filter_parse_error', 'Cannot parse filter: malformed $or'],
    [{ slug: 'aa', title: 'bb' }, 'filter_parse_error', 'Cannot parse filter: malformed filter'],
    [['slug', 'aa'], 'filter_parse_error', 'Cannot parse filter: malformed filter'],
  ])('%j → %s', (tree, code, message) => {
    const err = withTree(tree);
    expect(err.code).toBe(code);
    expect(err.message).toBe(message);
  });

  it('refuses a field map entry with both or neither of column and some', () => {
    expect(() => compileNql('odd:aa', { odd: { type: 'string' } })).toThrow(/exactly one of column and some/);
    expect(() => compileNql('odd:aa', { odd: { type: 'string', column: sql`odd`, some: (p) => p(sql`odd`) } })).toThrow(
      /exactly one of column and some/,
    );
  });
});
