import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import * as s from './schemas.js';
import type { TagsService } from './service.js';

export async function tagRoutes(fastify: FastifyInstance, opts: { tags: TagsService }) {
  const { app, tags, security, headers } = tenantScoped(fastify, 'tags');
  const { tags: svc } = opts;

  app.get(
    '/tags',
    {
      config: { access: 'tags:read' },
      schema: {
        tags,
        security,
        headers,
        summary: "The tenant's tags, by name, with how many posts carry each",
        response: { 200: data(z.array(s.tag)), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await svc.list(req.tenant!) }),
  );

  app.post(
    '/tags',
    {
      config: { access: 'tags:manage' },
      schema: {
        tags,
        security,
        headers,
        summary: 'Create a tag (owners, admins, editors)',
        body: s.createTagBody,
        response: { 201: data(s.tag), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => reply.code(201).send({ data: await svc.create(req.tenant!, req.body) }),
  );

  app.get(
    '/tags/:id',
    {
      config: { access: 'tags:read' },
      schema: {
        tags,
        security,
        headers,
        summary: 'One tag',
        params: s.tagIdParams,
        response: { 200: data(s.tag), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await svc.get(req.tenant!, req.params.id) }),
  );

  app.patch(
    '/tags/:id',
    {
      config: { access: 'tags:manage' },
      schema: {
        tags,
        security,
        headers,
        summary: 'Rename, re-slug, describe or change the visibility of a tag',
        params: s.tagIdParams,
        body: s.updateTagBody,
        response: { 200: data(s.tag), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req) => ({ data: await svc.update(req.tenant!, req.params.id, req.body) }),
  );

  app.delete(
    '/tags/:id',
    {
      config: { access: 'tags:manage' },
      schema: {
        tags,
        security,
        headers,
        summary: 'Delete a tag (it comes off every post; the posts stay)',
        params: s.tagIdParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await svc.remove(req.tenant!, req.params.id);
      return reply.code(204).send(null);
    },
  );
}
