import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { memberRoles } from '../../platform/db/schema.js';
import { data, errors } from '../../platform/http/schemas.js';
import type { SsoService } from './service.js';

const domain = z
  .object({
    domain: z.string(),
    verified: z.boolean(),
    verifiedAt: z.iso.datetime().nullable(),
    txtRecordName: z.string().describe('Publish a TXT record with this name…'),
    txtRecordValue: z.string().describe('…and this value, then call verify'),
  })
  .meta({ id: 'SsoDomain' });

const ssoConfig = z
  .object({
    configured: z.boolean(),
    issuer: z.string().nullable(),
    clientId: z.string().nullable(),
    enforced: z.boolean(),
    defaultRole: z.enum(memberRoles).nullable(),
    redirectUri: z.string().describe('Register this redirect URI with the identity provider'),
    domains: z.array(domain),
  })
  .meta({ id: 'SsoConfig' });

const ssoBody = z
  .object({
    issuer: z
      .url({ protocol: /^https?$/ })
      .max(2_000)
      .describe('OpenID Connect issuer URL (https, public)'),
    clientId: z.string().min(1).max(500),
    clientSecret: z.string().min(1).max(2_000).optional().describe('Required the first time; kept (sealed) if absent'),
    enforced: z
      .boolean()
      .default(false)
      .describe('People of the verified domains sign in only through this provider (needs a verified domain)'),
    defaultRole: z
      .enum(memberRoles)
      .exclude(['owner'])
      .nullable()
      .default(null)
      .describe('Role given to a person of a verified domain at their first sign-in; null: no automatic membership'),
  })
  .strict();

const params = z.object({ id: z.uuid() });
const domainParams = z.object({ id: z.uuid(), domain: z.string().min(1).max(253) });

/** An organization's own identity provider and email domains (owners). */
export async function ssoRoutes(fastify: FastifyInstance, opts: { sso: SsoService }) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { sso } = opts;
  const tags = ['single sign-on'];
  const security = [{ bearerAuth: [] }];
  app.addHook('preHandler', app.authenticate);
  const ctxOf = (req: FastifyRequest<{ Params: { id: string } }>) => ({
    tenantId: req.params.id,
    userId: req.auth!.userId,
  });
  const access = { access: 'tenant:security' as const };

  app.get(
    '/tenants/:id/sso',
    {
      config: access,
      schema: {
        tags,
        security,
        summary: "The organization's single sign-on: identity provider, enforcement, domains",
        params,
        response: { 200: data(ssoConfig), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await sso.getConfig(ctxOf(req)) }),
  );

  app.put(
    '/tenants/:id/sso',
    {
      config: access,
      schema: {
        tags,
        security,
        summary: "Set the organization's OpenID Connect identity provider (checked by discovery now)",
        params,
        body: ssoBody,
        response: { 200: data(ssoConfig), ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (req) => ({ data: await sso.setConfig(ctxOf(req), req.body) }),
  );

  app.delete(
    '/tenants/:id/sso',
    {
      config: access,
      schema: {
        tags,
        security,
        summary: 'Remove the identity provider (its enforcement ends with it)',
        params,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await sso.removeConfig(ctxOf(req));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/tenants/:id/sso/domains',
    {
      config: access,
      schema: {
        tags,
        security,
        summary: 'Claim an email domain: returns the DNS TXT record that proves it',
        params,
        body: z.object({ domain: z.string().min(3).max(253) }).strict(),
        response: { 201: data(domain), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => reply.code(201).send({ data: await sso.addDomain(ctxOf(req), req.body.domain) }),
  );

  app.post(
    '/tenants/:id/sso/domains/:domain/verify',
    {
      config: access,
      schema: {
        tags,
        security,
        summary: 'Check the TXT record now; a domain is verified by one organization at most',
        params: domainParams,
        response: { 200: data(domain), ...errors(400, 401, 403, 404, 409, 422) },
      },
    },
    async (req) => ({ data: await sso.verifyDomain(ctxOf(req), req.params.domain) }),
  );

  app.delete(
    '/tenants/:id/sso/domains/:domain',
    {
      config: access,
      schema: {
        tags,
        security,
        summary: 'Give up an email domain',
        params: domainParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await sso.removeDomain(ctxOf(req), req.params.domain);
      return reply.code(204).send(null);
    },
  );
}
