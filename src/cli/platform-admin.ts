/**
 * `npm run admin:grant -- <email> [--revoke]`: makes an account a platform admin (every
 * tenant's jobs, queue statistics, the dashboard at /admin/queues) or takes that away. In the
 * Docker image: `node dist/cli/platform-admin.js <email> [--revoke]`.
 */
import pino from 'pino';
import { createContainer } from '../composition.js';
import { ConfigError, loadConfig } from '../config.js';

async function main() {
  const args = process.argv.slice(2);
  const email = args.find((a) => !a.startsWith('-'));
  const revoke = args.includes('--revoke');
  if (!email) {
    console.error('Usage: npm run admin:grant -- <email> [--revoke]');
    process.exit(2);
  }
  const container = await createContainer(loadConfig(), { log: pino({ level: 'warn' }) });
  try {
    const ok = await container.services.auth.setPlatformAdmin(email, !revoke);
    if (!ok) {
      console.error(`No account with email ${email}`);
      process.exitCode = 1;
    } else {
      console.log(`${email} is ${revoke ? 'no longer' : 'now'} a platform admin`);
    }
  } finally {
    await container.close();
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
