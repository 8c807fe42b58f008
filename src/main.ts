import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { createContainer } from './composition.js';
import { type Config, ConfigError, loadConfig } from './config.js';

/** The API process: `npm start`. */
async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }

  const container = await createContainer(config);
  const app = await buildApp({ config, container });
  app.addHook('onClose', async () => {
    await container.close();
  });

  // SIGTERM / SIGINT: stop accepting, let in-flight requests finish, close the database.
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
    { api: `${base}/api/v1`, docs: `${base}/docs`, database: container.db.kind },
    `Quire is listening: API ${base}/api/v1, docs ${base}/docs`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
