import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import type { ExportsService } from './service.js';

export async function exportRoutes(fastify: FastifyInstance, opts: { exports: ExportsService }) {
  const { app, tags, security } = tenantScoped(fastify, 'exports');

  app.post(
    '/exports',
    {
      config: { access: 'exports:create' },
      schema: {
        tags,
        security,
        summary: "Export the tenant's posts as JSON (a job: follow it at /jobs/:id)",
        response: { 202: data(z.object({ jobId: z.string() })), ...errors(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const jobId = await opts.exports.start(req.tenant!);
      return reply.code(202).header('location', `/api/v1/jobs/${jobId}`).send({ data: { jobId } });
    },
  );

  app.get(
    '/exports/:jobId',
    {
      config: { access: 'exports:create' },
      schema: {
        tags,
        security,
        summary: 'Download a finished export',
        params: z.object({ jobId: z.uuid() }),
        response: {
          200: z.unknown().describe('The export: { exportedAt, posts: [...] }'),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const file = await opts.exports.download(req.tenant!, req.params.jobId);
      return reply
        .type('application/json')
        .header('content-length', file.size)
        .header('content-disposition', `attachment; filename="quire-export-${req.params.jobId}.json"`)
        .send(file.stream);
    },
  );
}
