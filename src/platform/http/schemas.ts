import { z } from 'zod';

/** The documented error shape; every non-2xx JSON response of /api/v1 has it. */
export const errorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
      requestId: z.string(),
    }),
  })
  .meta({ id: 'Error' });

export const data = <T extends z.ZodType>(schema: T) => z.object({ data: schema });

export const page = <T extends z.ZodType>(schema: T) =>
  z.object({
    data: z.array(schema),
    meta: z.object({ nextCursor: z.string().nullable() }),
  });

/** Error responses a route can produce, for the OpenAPI document. */
export const errors = (...codes: Array<400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429>) =>
  Object.fromEntries(codes.map((c) => [c, errorBody])) as Record<number, typeof errorBody>;

export const uuidParam = z.uuid();
