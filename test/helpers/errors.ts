import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';

/** Lines or fragments that would mean a stack trace or a server path leaked into a response. */
const LEAKS = [/\n\s*at /, /\bat [\w.<>]+ \(/, /node_modules/, /\/work\//, /\.[cm]?[jt]s:\d+/, /\bstack\b/i];

/**
 * Asserts the documented error envelope `{ error: { code, message, details?, requestId } }`:
 * the status, the code, a requestId equal to the x-request-id header, and nothing that looks like
 * a stack trace or a file path. Returns the `error` object for further assertions.
 */
export function expectError(res: LightMyRequestResponse, status: number, code?: string | RegExp) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json();
  expect(Object.keys(body)).toEqual(['error']);
  const { error } = body;
  expect(Object.keys(error).filter((k) => k !== 'details')).toEqual(['code', 'message', 'requestId']);
  expect(error.code).toEqual(expect.any(String));
  if (code !== undefined) expect(error.code).toMatch(typeof code === 'string' ? new RegExp(`^${code}$`) : code);
  expect(error.message).toEqual(expect.any(String));
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.requestId).toBe(res.headers['x-request-id']);
  for (const leak of LEAKS) expect(res.body).not.toMatch(leak);
  return error as { code: string; message: string; details?: unknown; requestId: string };
}

/** The `details[].field` names of a validation error. */
export function fieldsOf(error: { details?: unknown }): string[] {
  expect(Array.isArray(error.details)).toBe(true);
  return (error.details as Array<{ field: string }>).map((d) => d.field);
}
