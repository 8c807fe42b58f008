import type { FastifyInstance } from 'fastify';
import { errors } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import * as s from './schemas.js';
import type { SearchService } from './service.js';

/** Staff search: every post and page of the tenant, any status. (Readers: the Content API's /search/.) */
export async function searchRoutes(fastify: FastifyInstance, opts: { search: SearchService }) {
  const { app, tags, security, headers } = tenantScoped(fastify, 'search');
  const svc = opts.search;

  app.get(
    '/search',
    {
      config: { access: 'posts:read' },
      schema: {
        tags,
        security,
        headers,
        summary: "Search the tenant's posts and pages, every status (any member)",
        description:
          'Full-text search in the tenant\'s language (settings.lang): a title match ranks above an excerpt or tag match, which ranks above a body match. Web-search syntax: `"exact phrase"`, `-excluded`, `a or b`. When few documents match, titles close to the query (typos) follow, with `match: "fuzzy"`. Snippets are HTML with `<mark>` around the matches and everything else escaped.',
        querystring: s.searchQuery,
        response: { 200: s.searchResponse, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => svc.staff(req.tenant!, req.query),
  );
}
