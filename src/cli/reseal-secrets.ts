/**
 * `npm run secrets:reseal`: after SECRETS_KEY changed (the old key moved to
 * SECRETS_PREVIOUS_KEYS), rewrites every stored secret sealed under a previous key under the
 * current one: TOTP secrets and identity-provider client secrets. Safe to run again and while
 * the API serves. When it reports nothing unreadable, SECRETS_PREVIOUS_KEYS can go. In the
 * Docker image: `node dist/cli/reseal-secrets.js`.
 */
import pino from 'pino';
import { createContainer } from '../composition.js';
import { ConfigError, loadConfig } from '../config.js';

async function main() {
  const container = await createContainer(loadConfig(), { log: pino({ level: 'warn' }) });
  try {
    const totp = await container.services.mfa.reseal();
    const sso = await container.services.sso.reseal();
    console.log(
      `resealed: ${totp.resealed} TOTP secrets, ${sso.resealed} identity-provider client secrets under the current SECRETS_KEY`,
    );
    const unreadable = totp.unreadable + sso.unreadable;
    if (unreadable > 0) {
      console.error(
        `unreadable: ${totp.unreadable} TOTP secrets, ${sso.unreadable} client secrets are sealed under a key that is neither SECRETS_KEY nor in SECRETS_PREVIOUS_KEYS; keep looking for that key`,
      );
      process.exitCode = 1;
    } else {
      console.log('nothing is sealed under a previous key any more: SECRETS_PREVIOUS_KEYS can go');
    }
  } finally {
    await container.close();
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
