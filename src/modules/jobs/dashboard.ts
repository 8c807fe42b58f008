import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { sendError } from '../../platform/http/error-handler.js';
import { AppError, forbidden } from '../../shared/errors.js';
import type { AuthService } from '../auth/service.js';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board (BullMQ mode only) for platform admins: every request, the UI's own API calls
 * included, must carry a platform admin's bearer token.
 */
export async function queueDashboard(app: FastifyInstance, opts: { queues: Queue[]; auth: AuthService }) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Quire jobs' } },
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      try {
        await app.authenticate(req);
        if (!(await opts.auth.isPlatformAdmin(req.auth!.userId))) throw forbidden('Platform admins only');
      } catch (err) {
        // Answered here: Bull Board's plugin sets its own error handler for its routes, which
        // would render what we throw in its shape ({ error: { key }, message }, the raw message
        // of an unexpected error included), not ours.
        if (err instanceof AppError) {
          return sendError(req, reply, {
            status: err.statusCode,
            code: err.code,
            message: err.message,
            headers: err.headers,
          });
        }
        req.log.error({ err }, 'request failed');
        return sendError(req, reply, {
          status: 500,
          code: 'internal_error',
          message: 'Something went wrong on our side',
        });
      }
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}
