import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';

/**
 * The start of every tenant-scoped route group: Zod-typed routes, a bearer token and the
 * request's tenant resolved before each handler, and the OpenAPI tag, security and
 * `X-Tenant-ID` header the group's routes declare.
 */
export function tenantScoped(fastify: FastifyInstance, tag: string) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addHook('preHandler', app.authenticate);
  app.addHook('preHandler', app.resolveTenant);
  return {
    app,
    tags: [tag],
    security: [{ bearerAuth: [] }],
    headers: z.object({ 'x-tenant-id': z.uuid().optional() }),
  };
}
