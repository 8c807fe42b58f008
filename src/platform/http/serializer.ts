import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify/types/schema.js';
import { z } from 'zod';

/**
 * Success responses are written by fast-json-stringify from each route's Zod schema turned into
 * JSON Schema: only declared fields leave the process (an extra column never leaks), without
 * running Zod over every response. Services build responses with explicit DTO mappers, so the
 * shapes are ours; the Zod schemas stay the single source for validation, types and OpenAPI.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = ({ schema }) =>
  fastJson(z.toJSONSchema(schema, { target: 'draft-7', io: 'output', unrepresentable: 'any' }) as object);
