import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiKeyScopes } from '../../platform/db/schema.js';
import { data, errors } from '../../platform/http/schemas.js';
import type { ApiKeysService } from './service.js';

const apiKey = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string().describe('The first characters of the key, to recognise it; the key itself is shown only once'),
    scopes: z.array(z.enum(apiKeyScopes)),
    createdBy: z.uuid().describe('The member the key acts for: it never does more than their current role allows'),
    rateLimitPerMinute: z.number().int().nullable(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime().nullable(),
    lastUsedAt: z.iso.datetime().nullable().describe('Updated at most once a minute'),
    revokedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'ApiKey' });

const createBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z
      .array(z.enum(apiKeyScopes))
      .min(1)
      .max(apiKeyScopes.length)
      .describe(
        '`content:read` reads posts, pages, tags and authors; `content:write` also writes them; `members:read` reads members; `admin` holds every scope',
      ),
    expiresAt: z.iso.datetime({ offset: true }).nullish().describe('When the key stops working (never, if absent)'),
    rateLimitPerMinute: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .nullish()
      .describe('Requests a minute for this key (the deployment default if absent)'),
  })
  .strict();

const params = z.object({ id: z.uuid() });
const keyParams = z.object({ id: z.uuid(), keyId: z.uuid() });

/** Admin API keys of an organization: created, listed and revoked by its owners and admins (people, not keys). */
export async function apiKeyRoutes(fastify: FastifyInstance, opts: { apiKeys: ApiKeysService }) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const svc = opts.apiKeys;
  const tags = ['api keys'];
  const security = [{ bearerAuth: [] }];
  app.addHook('preHandler', app.authenticate);
  const ctxOf = (req: { params: { id: string }; auth: { userId: string } | null }) => ({
    tenantId: req.params.id,
    userId: req.auth!.userId,
  });

  app.post(
    '/tenants/:id/api-keys',
    {
      config: { access: 'api-keys:manage' },
      schema: {
        tags,
        security,
        summary: 'Create an admin API key (owners, admins); the key is in this response only',
        params,
        body: createBody,
        response: {
          201: data(apiKey.extend({ key: z.string().describe('`qak_` and 43 characters; shown this once') })),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => reply.code(201).send({ data: await svc.create(ctxOf(req), req.body) }),
  );

  app.get(
    '/tenants/:id/api-keys',
    {
      config: { access: 'api-keys:manage' },
      schema: {
        tags,
        security,
        summary: "The organization's admin API keys, revoked ones included (never the keys themselves)",
        params,
        response: { 200: data(z.array(apiKey)), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await svc.list(ctxOf(req)) }),
  );

  app.delete(
    '/tenants/:id/api-keys/:keyId',
    {
      config: { access: 'api-keys:manage' },
      schema: {
        tags,
        security,
        summary: 'Revoke an admin API key: it stops working at once, on every instance',
        params: keyParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await svc.revoke(ctxOf(req), req.params.keyId);
      return reply.code(204).send(null);
    },
  );
}
