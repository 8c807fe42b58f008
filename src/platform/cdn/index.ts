import type { Logger } from 'pino';

/**
 * The CDN purge port. Public responses carry `Surrogate-Key` tags; when content changes a job
 * purges the tags it touched. The log adapter (default) only records what would be purged; the
 * HTTP adapter POSTs the keys to a purge endpoint (Fastly-style `Surrogate-Key` header, and the
 * same keys as JSON for endpoints that read a body).
 */
export interface CdnPurger {
  readonly kind: 'log' | 'http';
  purge(keys: string[]): Promise<void>;
}

export function createLogPurger(log: Logger): CdnPurger {
  return {
    kind: 'log',
    async purge(keys) {
      log.info({ event: 'cdn.purge', keys }, 'CDN purge (log adapter: no CDN configured)');
    },
  };
}

export interface HttpPurgerOptions {
  url: string;
  /** Sent as `<tokenHeader>: <token>` (Fastly: `Fastly-Key`), or as a bearer token. */
  token?: string;
  tokenHeader?: string;
  timeoutMs: number;
}

export function createHttpPurger(opts: HttpPurgerOptions): CdnPurger {
  return {
    kind: 'http',
    async purge(keys) {
      if (keys.length === 0) return;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'surrogate-key': keys.join(' '),
      };
      if (opts.token) {
        if (opts.tokenHeader) headers[opts.tokenHeader.toLowerCase()] = opts.token;
        else headers.authorization = `Bearer ${opts.token}`;
      }
      const res = await fetch(opts.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ surrogate_keys: keys }),
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      // Drain the body so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`CDN purge answered ${res.status}`);
    },
  };
}
