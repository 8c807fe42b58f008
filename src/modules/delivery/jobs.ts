import type { Logger } from 'pino';
import type { CdnPurger } from '../../platform/cdn/index.js';
import type { JobPlatform } from '../jobs/platform.js';
import { type ContentEvent, contentEventNames, keysOf } from './events.js';
import type { ContentVersions } from './versions.js';

/**
 * A content event's job: the tenant's cached responses go (again: the writer already bumped the
 * version after its commit; this covers a writer that died between commit and bump), then the
 * CDN purges the keys. A purge that fails is retried with the job.
 */
export function registerDeliveryJobs(
  jobs: JobPlatform,
  deps: { purger: CdnPurger; versions: ContentVersions; log: Logger },
) {
  for (const name of contentEventNames) {
    jobs.handle('events', name, async (job) => {
      const e = job.data as unknown as ContentEvent;
      await deps.versions.bump(e.tenantId);
      const keys = keysOf(e);
      await deps.purger.purge(keys);
      return { purged: keys };
    });
  }
}
