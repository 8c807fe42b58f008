import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import * as s from './schemas.js';
import type { AuthorsService } from './service.js';

export async function authorRoutes(fastify: FastifyInstance, opts: { authors: AuthorsService }) {
  const { app, tags, security, headers } = tenantScoped(fastify, 'authors');
  const { authors } = opts;

  app.get(
    '/authors',
    {
      config: { access: 'authors:read' },
      schema: {
        tags,
        security,
        headers,
        summary: "The members' public author profiles in this tenant",
        response: { 200: data(z.array(s.profile)), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await authors.list(req.tenant!) }),
  );

  app.get(
    '/authors/:userId',
    {
      config: { access: 'authors:read' },
      schema: {
        tags,
        security,
        headers,
        summary: "One member's author profile",
        params: s.userIdParams,
        response: { 200: data(s.profile), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await authors.get(req.tenant!, req.params.userId) }),
  );

  app.patch(
    '/authors/:userId',
    {
      config: { access: 'authors:update:own' },
      schema: {
        tags,
        security,
        headers,
        summary: 'Edit an author profile (your own; owners and admins anyone’s)',
        description: 'The name is the user’s own; the slug, bio, images, website and location are per tenant.',
        params: s.userIdParams,
        body: s.updateProfileBody,
        response: { 200: data(s.profile), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req) => ({ data: await authors.update(req.tenant!, req.params.userId, req.body) }),
  );
}
