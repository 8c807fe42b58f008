/** `npm run db:migrate`: applies pending migrations to the configured database and exits. */
import { openDatabase } from '../src/composition.js';
import { ConfigError, loadConfig } from '../src/config.js';

try {
  const config = loadConfig();
  const db = await openDatabase(config, { migrate: true });
  await db.close();
  console.log(`migrations applied (${config.database.url ? 'PostgreSQL' : `embedded, ${config.dataDir}`})`);
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
