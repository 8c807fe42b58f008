import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { createContainer } from './composition.js';
import { loadConfigOrExit } from './config.js';

/** The API process: `npm start`. */
async function main() {
  const config = loadConfigOrExit();

  const container = await createContainer(config);
  const app = await buildApp({ config, container });
  // Fastify closes HTTP first (in-flight requests finish), then this hook closes the rest in
  // order: workers, outbox relay, queue, Redis, database.
  app.addHook('onClose', async () => {
    await container.close();
  });
  // One-line start: the jobs run in this process. WORKERS=off leaves them to `npm run worker`.
  if (config.workers.inline) await container.startWorkers();

  // SIGTERM / SIGINT: stop accepting, let in-flight requests finish, then close in order.
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: app.log }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
  });

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const base = `http://localhost:${port}`;
  app.log.info(
    {
      api: `${base}/api/v1`,
      docs: `${base}/docs`,
      database: container.db.kind,
      queue: container.queue.kind,
      cache: container.redis ? 'redis' : 'memory',
      workers: config.workers.inline ? 'inline' : 'off',
    },
    `Quire is listening: API ${base}/api/v1, docs ${base}/docs`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
