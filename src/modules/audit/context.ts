import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Where a request comes from: the audit log records it without every service passing it on. */
export interface RequestOrigin {
  ip: string;
  userAgent: string | null;
  /** Set when an admin API key authenticated the request: entries then say the key acted. */
  apiKeyId?: string;
}

const storage = new AsyncLocalStorage<RequestOrigin>();

/** The origin of the request being served, if any (a job has none). */
export const currentOrigin = (): RequestOrigin | undefined => storage.getStore();

/** Enters each request's origin for the rest of its handling (hooks, handler, services). */
export const requestOrigin = fp(
  async (app: FastifyInstance) => {
    app.addHook('onRequest', (req, _reply, done) => {
      const ua = req.headers['user-agent'];
      storage.run({ ip: req.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 500) : null }, done);
    });
  },
  { name: 'quire-request-origin' },
);
