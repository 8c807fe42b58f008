import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { TenantContext } from '../../platform/db/index.js';
import { data, errors } from '../../platform/http/schemas.js';
import { AppError } from '../../shared/errors.js';
import * as s from './schemas.js';
import type { TenantsService } from './service.js';

/** Tenant routes name their tenant in the path; the path wins over header and token. */
const ctxOf = (req: FastifyRequest<{ Params: { id: string } }>): TenantContext => ({
  tenantId: req.params.id,
  userId: req.auth!.userId,
});

export async function tenantRoutes(fastify: FastifyInstance, opts: { tenants: TenantsService }) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { tenants } = opts;
  const tags = ['tenants'];
  const security = [{ bearerAuth: [] }];
  app.addHook('preHandler', app.authenticate);

  app.post(
    '/tenants',
    {
      config: { access: 'user' },
      schema: {
        tags,
        security,
        summary: 'Create an organization; the caller becomes its owner',
        body: s.createTenantBody,
        response: { 201: data(s.tenant), ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => reply.code(201).send({ data: await tenants.create(req.auth!.userId, req.body) }),
  );

  app.get(
    '/tenants',
    {
      config: { access: 'user' },
      schema: {
        tags,
        security,
        summary: 'Organizations the caller belongs to',
        response: { 200: data(z.array(s.tenantWithRole)), ...errors(401) },
      },
    },
    async (req) => ({ data: await tenants.listMine(req.auth!.userId) }),
  );

  app.get(
    '/tenants/:id',
    {
      config: { access: 'tenant:read' },
      schema: {
        tags,
        security,
        summary: 'One organization',
        params: s.tenantIdParams,
        response: { 200: data(s.tenantWithRole), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await tenants.get(ctxOf(req)) }),
  );

  app.put(
    '/tenants/:id/settings',
    {
      config: { access: 'tenant:update' },
      schema: {
        tags,
        security,
        summary: 'Replace the publication settings (owner, admin)',
        params: s.tenantIdParams,
        body: s.settingsBody,
        response: { 200: data(s.tenant), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await tenants.updateSettings(ctxOf(req), req.body) }),
  );

  const securityPolicy = z.object({
    requireMfa: z
      .boolean()
      .describe(
        'Staff must sign in with a second factor (TOTP) to act in this organization; API keys are not affected',
      ),
  });

  app.get(
    '/tenants/:id/security',
    {
      config: { access: 'tenant:read' },
      schema: {
        tags,
        security,
        summary: "The organization's security policy",
        params: s.tenantIdParams,
        response: { 200: data(securityPolicy), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await tenants.getSecurityPolicy(ctxOf(req)) }),
  );

  app.put(
    '/tenants/:id/security',
    {
      config: { access: 'tenant:security' },
      schema: {
        tags,
        security,
        summary: 'Set the security policy (owners): require a second factor of all staff',
        description:
          'With `requireMfa`, members whose session did not use a second factor get 403 `mfa_required` on this organization’s routes until they turn on two-factor authentication and sign in with it. Turning it on needs an owner who signed in with a second factor.',
        params: s.tenantIdParams,
        body: securityPolicy.strict(),
        response: { 200: data(securityPolicy), ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (req) => {
      // The owner turning it on must meet it first, or they lock themselves out.
      if (req.body.requireMfa && !req.auth!.amr?.includes('otp')) {
        throw new AppError(
          422,
          'mfa_required_first',
          'Sign in with a second factor yourself before requiring one of your staff',
        );
      }
      return { data: await tenants.setSecurityPolicy(ctxOf(req), req.body) };
    },
  );

  app.get(
    '/tenants/:id/usage',
    {
      config: { access: 'tenant:usage' },
      schema: {
        tags,
        security,
        summary: 'Posts, members and storage used so far (owner, admin)',
        params: s.tenantIdParams,
        response: { 200: data(s.usage), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await tenants.usage(ctxOf(req)) }),
  );

  app.get(
    '/tenants/:id/members',
    {
      config: { access: 'members:read' },
      schema: {
        tags,
        security,
        summary: 'Members and their roles',
        params: s.tenantIdParams,
        response: { 200: data(z.array(s.member)), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await tenants.listMembers(ctxOf(req)) }),
  );

  app.post(
    '/tenants/:id/members',
    {
      config: { access: 'members:manage' },
      preHandler: app.requireVerifiedEmail,
      schema: {
        tags,
        security,
        summary: 'Invite someone by email as a role (owner, admin)',
        description:
          'An existing account is added at once (201, status "added"). An unknown email gets a pending invitation (202, status "invited") that becomes a membership when that email registers.',
        params: s.tenantIdParams,
        body: s.inviteBody,
        response: { 201: data(s.inviteResult), 202: data(s.inviteResult), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const result = await tenants.invite(ctxOf(req), req.body);
      return reply.code(result.status === 'added' ? 201 : 202).send({ data: result });
    },
  );

  app.patch(
    '/tenants/:id/members/:userId',
    {
      config: { access: 'members:manage' },
      preHandler: app.requireVerifiedEmail,
      schema: {
        tags,
        security,
        summary: "Change a member's role (owner, admin; only owners touch owners)",
        params: s.memberParams,
        body: z.object({ role: s.role }),
        response: { 204: z.null(), ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (req, reply) => {
      await tenants.changeRole(ctxOf(req), req.params.userId, req.body.role);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/tenants/:id/members/:userId',
    {
      config: { access: 'members:remove:own' },
      // Leaving needs no verified address; removing someone else does.
      preHandler: async (req) => {
        if ((req.params as { userId?: string }).userId !== req.auth?.userId) await app.requireVerifiedEmail(req);
      },
      schema: {
        tags,
        security,
        summary: 'Remove a member (owner, admin), or leave (yourself)',
        params: s.memberParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (req, reply) => {
      await tenants.removeMember(ctxOf(req), req.params.userId);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/tenants/:id/invitations',
    {
      config: { access: 'members:manage' },
      schema: {
        tags,
        security,
        summary: 'Pending invitations (owner, admin)',
        params: s.tenantIdParams,
        response: { 200: data(z.array(s.invitation)), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: await tenants.listInvitations(ctxOf(req)) }),
  );

  app.delete(
    '/tenants/:id/invitations/:invitationId',
    {
      config: { access: 'members:manage' },
      preHandler: app.requireVerifiedEmail,
      schema: {
        tags,
        security,
        summary: 'Withdraw a pending invitation (owner, admin)',
        params: s.invitationParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await tenants.revokeInvitation(ctxOf(req), req.params.invitationId);
      return reply.code(204).send(null);
    },
  );
}
