import type { FastifyRequest } from 'fastify';
import { badRequest } from '../../shared/errors.js';

/**
 * Strings PostgreSQL cannot store: a NUL character (text) or a lone UTF-16 surrogate (jsonb).
 * JSON carries them (`\u0000`, `\ud800`) and URLs too (`%00`); refused here as a 400 for the
 * whole API, rather than each schema remembering to, and the database answering 500.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function firstBadString(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') {
    return value.includes('\u0000') || LONE_SURROGATE.test(value) ? path : undefined;
  }
  if (depth > 64 || value === null || typeof value !== 'object') return undefined;
  for (const [key, v] of Object.entries(value)) {
    const bad = firstBadString(key, path, depth + 1) ?? firstBadString(v, `${path}.${key}`, depth + 1);
    if (bad) return bad;
  }
  return undefined;
}

/** preValidation hook: every parameter, query value and body string must be storable text. */
export async function rejectUnstorableText(req: FastifyRequest): Promise<void> {
  const field =
    firstBadString(req.params, 'params') ??
    firstBadString(req.query, 'querystring') ??
    firstBadString(req.body, 'body');
  if (field) {
    throw badRequest('invalid_characters', 'Text may not contain NUL characters or unpaired UTF-16 surrogates', [
      { field, message: 'contains a NUL character or an unpaired surrogate' },
    ]);
  }
}
