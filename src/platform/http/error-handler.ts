import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError } from '../../shared/errors.js';

interface ErrorPayload {
  status: number;
  code: string;
  message: string;
  details?: unknown;
  headers?: Record<string, string>;
}

// Fastify's own errors that are the client's fault, mapped to our codes.
const fastifyCodes: Record<string, { status: number; code: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'payload_too_large', message: 'Request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    message: 'Content-Type must be application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'bad_request', message: 'Invalid Content-Length' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json', message: 'Request body is empty' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', message: 'Request body is not valid JSON' },
  FST_ERR_BAD_URL: { status: 400, code: 'bad_request', message: 'Malformed URL' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 400, code: 'bad_request', message: 'A path segment is too long' },
  FST_CSRF_INVALID_TOKEN: { status: 403, code: 'csrf_invalid', message: 'The X-CSRF-Token header is missing or wrong' },
  FST_CSRF_MISSING_SECRET: { status: 403, code: 'csrf_invalid', message: 'The CSRF cookie is missing; sign in again' },
};

export function toPayload(err: FastifyError | AppError | Error): ErrorPayload {
  if (err instanceof AppError) {
    return { status: err.statusCode, code: err.code, message: err.message, details: err.details, headers: err.headers };
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as FastifyError).validationContext ?? 'body';
    return {
      status: 400,
      code: 'validation_failed',
      message: 'The request is invalid',
      details: err.validation.map((v) => ({
        field: [where, ...v.instancePath.split('/').filter(Boolean)].join('.'),
        message: v.message,
        code: v.keyword,
      })),
    };
  }
  const fe = err as FastifyError;
  if (fe.code && fastifyCodes[fe.code]) {
    const m = fastifyCodes[fe.code]!;
    return { status: m.status, code: m.code, message: m.message };
  }
  if (fe.statusCode === 429) {
    return { status: 429, code: 'rate_limited', message: fe.message || 'Too many requests' };
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Any other 4xx Fastify or a plugin raised: safe to describe, never with internals.
    return { status: fe.statusCode, code: 'bad_request', message: fe.message };
  }
  return { status: 500, code: 'internal_error', message: 'Something went wrong on our side' };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, p: ErrorPayload) {
  if (p.headers) reply.headers(p.headers);
  const error: Record<string, unknown> = { code: p.code, message: p.message };
  if (p.details !== undefined) error.details = p.details;
  error.requestId = request.id;
  // Serialized here: a route's response schema describes its success shapes only.
  return reply.code(p.status).type('application/json; charset=utf-8').serializer(JSON.stringify).send({ error });
}

/**
 * Fastify's `frameworkErrors` option: the router's own errors (a malformed URL, an over-long path
 * parameter) skip every hook and the error handler, so without this they had Fastify's default
 * body and no x-request-id.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header('x-request-id', request.id);
  return sendError(request, reply, toPayload(err));
}

/** One error handler and one not-found handler for the whole API. */
export const errorHandler = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      const payload = toPayload(err);
      if (payload.status >= 500) {
        request.log.error({ err }, 'request failed');
      } else if (!(err instanceof AppError)) {
        request.log.info({ code: payload.code, reason: err.message }, 'request rejected');
      }
      return sendError(request, reply, payload);
    });
    app.setNotFoundHandler((request, reply) =>
      sendError(request, reply, {
        status: 404,
        code: 'route_not_found',
        message: `Route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)} not found`,
      }),
    );
  },
  { name: 'quire-error-handler' },
);
