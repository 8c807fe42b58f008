import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import type { ContentKeysService } from './service.js';

const contentKey = z
  .object({
    id: z.uuid(),
    name: z.string(),
    keyHint: z.string().describe('The last characters of the key; the key itself is shown only at creation'),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'ContentKey' });

export async function contentKeyRoutes(fastify: FastifyInstance, opts: { contentKeys: ContentKeysService }) {
  const { app, tags, security } = tenantScoped(fastify, 'content keys');
  const svc = opts.contentKeys;

  app.post(
    '/content-keys',
    {
      config: { access: 'content-keys:manage' },
      schema: {
        tags,
        security,
        summary: 'Create a Content API key (owners, admins): read-only access to published content',
        body: z
          .object({ name: z.string().trim().min(1).max(100).default('Content API') })
          .strict()
          .nullish(),
        response: {
          201: data(contentKey.extend({ key: z.string().describe('26 lowercase hex characters; shown this once') })),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) =>
      reply.code(201).send({ data: await svc.create(req.tenant!, req.body?.name ?? 'Content API') }),
  );

  app.get(
    '/content-keys',
    {
      config: { access: 'content-keys:manage' },
      schema: {
        tags,
        security,
        summary: "The tenant's Content API keys (without the keys themselves)",
        response: { 200: data(z.array(contentKey)), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await svc.list(req.tenant!) }),
  );

  app.delete(
    '/content-keys/:id',
    {
      config: { access: 'content-keys:manage' },
      schema: {
        tags,
        security,
        summary: 'Revoke a Content API key (at once, on every instance)',
        params: z.object({ id: z.uuid() }),
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await svc.revoke(req.tenant!, req.params.id);
      return reply.code(204).send(null);
    },
  );
}
