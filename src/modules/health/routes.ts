import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

const status = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.record(z.string(), z.enum(['ok', 'failing'])).optional(),
});

/** Liveness: the process answers. Readiness: every dependency answers (503 otherwise). */
export async function healthRoutes(fastify: FastifyInstance, opts: { checks: ReadinessCheck[] }) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const tags = ['health'];
  const quiet = { logLevel: 'warn' as const, config: { rateLimit: false as const } };

  app.get(
    '/health/live',
    { ...quiet, schema: { tags, summary: 'The process is up', response: { 200: status } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      ...quiet,
      schema: { tags, summary: 'Dependencies are reachable', response: { 200: status, 503: status } },
    },
    async (req, reply) => {
      const results = await Promise.all(
        opts.checks.map(async (c) => {
          try {
            await withTimeout(c.check(), 2_000);
            return [c.name, 'ok'] as const;
          } catch (err) {
            req.log.warn({ check: c.name, err }, 'readiness check failed');
            return [c.name, 'failing'] as const;
          }
        }),
      );
      const ok = results.every(([, r]) => r === 'ok');
      return reply
        .code(ok ? 200 : 503)
        .send({ status: ok ? 'ok' : 'unavailable', checks: Object.fromEntries(results) });
    },
  );
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
