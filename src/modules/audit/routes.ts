import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { errors } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import { type AuditLog, auditActions } from './service.js';

const entry = z
  .object({
    id: z.uuid(),
    at: z.iso.datetime(),
    action: z.enum(auditActions),
    actorUserId: z.uuid().nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    target: z.object({ type: z.string(), id: z.string() }).nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

export async function auditRoutes(fastify: FastifyInstance, opts: { audit: AuditLog }) {
  const { app, tags, security, headers } = tenantScoped(fastify, 'audit');
  app.get(
    '/audit-log',
    {
      config: { access: 'audit:read' },
      schema: {
        tags,
        security,
        headers,
        summary: "The tenant's security events, newest first (owners, admins)",
        description: `Sign-ins and their failures, lockouts, refresh token reuse, password changes and resets, revoked sessions, role changes, removed members, content keys created and revoked. Filter with ?action=.`,
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(100).default(50),
          cursor: z.string().max(200).optional(),
          action: z.enum(auditActions).optional(),
        }),
        response: {
          200: z.object({ data: z.array(entry), meta: z.object({ nextCursor: z.string().nullable() }) }),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      const r = await opts.audit.list(req.tenant!, req.query);
      return { data: r.data, meta: { nextCursor: r.nextCursor } };
    },
  );
}
