import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { data, errors } from '../../platform/http/schemas.js';
import type { JobInfo } from '../../platform/queue/index.js';
import type { AuthService } from '../auth/service.js';
import { queueNames } from './queues.js';
import type { JobsService, JobViewer } from './service.js';

const jobState = z.enum(['waiting', 'active', 'delayed', 'completed', 'failed']);

const job = z
  .object({
    id: z.string(),
    queue: z.string(),
    name: z.string(),
    state: jobState,
    tenantId: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
    progress: z.number(),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    failedReason: z.string().nullable(),
    result: z.unknown(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'Job' });

const counts = z.object({
  waiting: z.number().int(),
  active: z.number().int(),
  delayed: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
});

const toDto = ({ data: { _key, ...data }, ...j }: JobInfo) => ({
  ...j,
  // The idempotency key travels in the data for the workers; it is not the caller's data.
  data,
  createdAt: j.createdAt.toISOString(),
  startedAt: j.startedAt?.toISOString() ?? null,
  finishedAt: j.finishedAt?.toISOString() ?? null,
});

const idParams = z.object({ id: z.string().min(1).max(200) });

/** The operations API over the job platform: status, statistics, dead letters, replay. */
export async function jobRoutes(fastify: FastifyInstance, opts: { jobs: JobsService; auth: AuthService }) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { jobs, auth } = opts;
  const tags = ['jobs'];
  const security = [{ bearerAuth: [] }];
  app.addHook('preHandler', app.authenticate);

  // Platform admins (people, never keys) act on everything; others in the tenant the request names.
  app.addHook('preHandler', async (req) => {
    if (req.routeOptions.config.access === 'operator') return;
    if (!req.auth!.apiKey && (await auth.isPlatformAdmin(req.auth!.userId))) return;
    await app.resolveTenant(req);
  });
  const viewerOf = async (req: FastifyRequest): Promise<JobViewer> =>
    req.tenant ? { platformAdmin: false, tenant: req.tenant } : { platformAdmin: true };

  app.get(
    '/jobs/:id',
    {
      config: { access: 'jobs:read', operators: true },
      schema: {
        tags,
        security,
        summary: "A job's state, progress, attempts and failure reason",
        description: "Owners and admins see their tenant's jobs (X-Tenant-ID); platform admins see all.",
        params: idParams,
        response: { 200: data(job), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({ data: toDto(await jobs.getJob(await viewerOf(req), req.params.id)) }),
  );

  app.post(
    '/jobs/:id/retry',
    {
      config: { access: 'jobs:retry', operators: true },
      schema: {
        tags,
        security,
        summary: 'Replay a failed (dead-lettered) job with a fresh set of attempts',
        params: idParams,
        response: { 200: data(job), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req) => ({ data: toDto(await jobs.retry(await viewerOf(req), req.params.id)) }),
  );

  app.get(
    '/queues/stats',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Waiting, active, delayed, completed and failed jobs per queue (platform admins)',
        response: { 200: data(z.record(z.enum(queueNames), counts)), ...errors(401, 403) },
      },
    },
    async (req) => ({ data: await jobs.stats(await viewerOf(req)) }),
  );

  app.get(
    '/queues/:name/failed',
    {
      config: { access: 'jobs:read', operators: true },
      schema: {
        tags,
        security,
        summary: 'Dead letters: jobs whose last attempt failed, newest first',
        params: z.object({ name: z.enum(queueNames) }),
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(100).default(20),
          offset: z.coerce.number().int().min(0).max(10_000).default(0),
        }),
        response: { 200: data(z.array(job)), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ({
      data: (await jobs.failed(await viewerOf(req), req.params.name, req.query)).map(toDto),
    }),
  );
}
