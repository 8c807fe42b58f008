import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { forbidden } from '../../shared/errors.js';
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
    scope.addHook('onRequest', async (req) => {
      await app.authenticate(req);
      if (!(await opts.auth.isPlatformAdmin(req.auth!.userId))) throw forbidden('Platform admins only');
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}
