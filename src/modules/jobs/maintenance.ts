import type { Logger } from 'pino';
import type { Database } from '../../platform/db/index.js';
import type { AuthService } from '../auth/service.js';
import { purgeDispatched } from './outbox.js';
import type { JobPlatform } from './platform.js';

/** The maintenance queue: nightly purge of what has served its time, and a stuck-job sweep every minute. */
export function registerMaintenanceJobs(
  jobs: JobPlatform,
  deps: {
    db: Database;
    auth: AuthService;
    log: Logger;
    retentionMs: number;
    cron: string;
    /** Sign-ins left half way (second-factor challenges, identity-provider states). */
    purgeSignIns: (before: Date) => Promise<number>;
  },
) {
  jobs.handle('maintenance', 'purge', async () => {
    const before = new Date(Date.now() - deps.retentionMs);
    const refreshTokens = await deps.auth.purgeRefreshTokens(before);
    const emailTokens = await deps.auth.purgeEmailTokens(before);
    const outboxRows = await purgeDispatched(deps.db, before);
    // Unfinished sign-ins last minutes: an hour later they are gone, whatever the retention.
    const signIns = await deps.purgeSignIns(new Date(Date.now() - 3_600_000));
    const finished = await jobs.purge(deps.retentionMs);
    const result = {
      refreshTokens,
      emailTokens,
      signIns,
      outboxRows,
      finishedJobs: finished.jobs,
      processedKeys: finished.keys,
    };
    deps.log.info({ event: 'maintenance.purge', ...result }, 'maintenance: purged expired data');
    return result;
  });
  jobs.handle('maintenance', 'detect-stuck', async () => ({ stuck: (await jobs.detectStuck()).map((j) => j.id) }));

  jobs.every('maintenance', 'purge', deps.cron, 'purge');
  jobs.every('maintenance', 'detect-stuck', '* * * * *', 'detect-stuck');
}
