/** The parts of @tryghost/nql-lang (no types of its own) that the NQL compiler uses. */
declare module '@tryghost/nql-lang' {
  export interface ParseOptions {
    /** Field renames applied while parsing. */
    aliases?: Record<string, string>;
    /** Emit `now-7d` as `{ $relativeDate: … }` instead of an absolute 'YYYY-MM-DD HH:mm:ss' (UTC). */
    preserveRelativeDates?: boolean;
  }
  export interface Token {
    token: string;
    matched: string;
  }
  /** The Mongo-style JSON query; throws an Error with a multi-line message on a syntax error. */
  export function parse(input: string, options?: ParseOptions): unknown;
  export function lex(input: string): Token[];
  const nql: { parse: typeof parse; lex: typeof lex };
  export default nql;
}
