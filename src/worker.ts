import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { createContainer } from './composition.js';
import { loadConfigOrExit } from './config.js';
import { type QueueName, queueNames } from './modules/jobs/queues.js';

/**
 * The worker process: `npm run worker`. Runs the job consumers, the cron schedules and the
 * outbox relay against the same database and Redis as the API. Queues come from WORKER_QUEUES
 * or the arguments (`npm run worker -- export` for a dedicated export worker).
 */
async function main() {
  const config = loadConfigOrExit();
  const args = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = args.filter((a) => !queueNames.includes(a as QueueName));
  if (unknown.length) {
    console.error(`Unknown queue(s): ${unknown.join(', ')}. Queues: ${queueNames.join(', ')}`);
    process.exit(1);
  }
  const queues = args.length ? (args as QueueName[]) : config.workers.queues;

  const log = pino({ level: config.logLevel, base: { process: 'worker' } });
  const container = await createContainer(config, { log });
  await container.startWorkers(queues);
  log.info({ queues, backend: container.queue.kind, database: container.db.kind }, 'Quire worker is running');

  // SIGTERM: stop taking jobs, let running ones finish (or hand them back), then close in order.
  closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'worker shutting down after an error');
    else log.info({ signal }, 'worker shutting down');
    await container.close();
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
