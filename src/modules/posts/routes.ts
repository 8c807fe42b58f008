import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { data, errors, page } from '../../platform/http/schemas.js';
import { tenantScoped } from '../../platform/http/tenant-routes.js';
import * as s from './schemas.js';
import type { PostDto, PostsService } from './service.js';

/** The version a client read: `version` in the body wins over `If-Match: "<version>"`. */
function expectedVersion(req: FastifyRequest, bodyVersion: number | undefined): number | undefined {
  if (bodyVersion !== undefined) return bodyVersion;
  const h = req.headers['if-match'];
  return typeof h === 'string' ? Number(h.slice(1, -1)) : undefined;
}

const withEtag = (reply: FastifyReply, post: PostDto) => {
  reply.header('etag', `"${post.version}"`);
  return { data: post };
};

/** The staff API of posts, or of pages (the same model, at /pages). */
export async function postRoutes(fastify: FastifyInstance, opts: { posts: PostsService }) {
  const { posts } = opts;
  const kind = posts.type; // 'post' | 'page'
  const base = `/${kind}s`;
  const { app, tags, security, headers } = tenantScoped(fastify, `${kind}s`);
  const withIfMatch = headers.extend(s.ifMatchHeaders.shape);

  app.post(
    base,
    {
      config: { access: 'posts:create' },
      schema: {
        tags,
        security,
        summary: `Create a ${kind} as a draft (authors and above)`,
        headers,
        body: s.createPostBody,
        response: { 201: data(s.post), ...errors(400, 401, 403, 404, 409, 413, 415) },
      },
    },
    async (req, reply) =>
      reply.code(201).send(withEtag(reply, await posts.create(req.tenant!, s.toPostInput(req.body)))),
  );

  app.get(
    base,
    {
      config: { access: 'posts:read' },
      schema: {
        tags,
        security,
        summary: `List ${kind}s, newest first (cursor pagination)`,
        headers,
        querystring: s.listQuery,
        response: { 200: page(s.post), ...errors(400, 401, 404) },
      },
    },
    async (req) => {
      const result = await posts.list(req.tenant!, req.query);
      return { data: result.data, meta: { nextCursor: result.nextCursor } };
    },
  );

  app.get(
    `${base}/:idOrSlug`,
    {
      config: { access: 'posts:read' },
      schema: {
        tags,
        security,
        summary: `One ${kind}, by id or slug`,
        description: 'The ETag is the post version; send it back as If-Match when you write.',
        headers,
        params: s.idOrSlugParams,
        response: { 200: data(s.post), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => withEtag(reply, await posts.get(req.tenant!, req.params.idOrSlug)),
  );

  app.patch(
    `${base}/:id`,
    {
      config: { access: 'posts:update:own' },
      schema: {
        tags,
        security,
        summary: `Edit a ${kind} (authors their own, editors and above any); every edit stores a revision`,
        description: 'Optimistic concurrency: send the version you read; a stale version gets 409.',
        headers: withIfMatch,
        params: s.idParams,
        body: s.updatePostBody,
        response: { 200: data(s.post), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const { version, ...patch } = req.body;
      const post = await posts.update(req.tenant!, req.params.id, s.toPostInput(patch), expectedVersion(req, version));
      return withEtag(reply, post);
    },
  );

  const transitions = [
    ['publish', 'Publish now (sets publishedAt on first publication; needs a verified email)', posts.publish],
    ['unpublish', 'Back to draft', posts.unpublish],
    ['archive', 'Archive', posts.archive],
    ['unschedule', 'A scheduled post back to draft (its publication is cancelled)', posts.unschedule],
  ] as const;
  for (const [action, summary, run] of transitions) {
    app.post(
      `${base}/:id/${action}`,
      {
        config: { access: 'posts:publish:own' },
        ...(action === 'publish' && { preHandler: app.requireVerifiedEmail }),
        schema: {
          tags,
          security,
          summary,
          headers: withIfMatch,
          params: s.idParams,
          body: s.transitionBody,
          response: { 200: data(s.post), ...errors(400, 401, 403, 404, 409) },
        },
      },
      async (req, reply) =>
        withEtag(reply, await run(req.tenant!, req.params.id, expectedVersion(req, req.body?.version))),
    );
  }

  app.post(
    `${base}/:id/schedule`,
    {
      config: { access: 'posts:publish:own' },
      preHandler: app.requireVerifiedEmail,
      schema: {
        tags,
        security,
        summary: 'Schedule a draft: it is published at publishAt (a future time)',
        description:
          'The post becomes `scheduled` with `publishedAt` = publishAt. Scheduling a scheduled post again moves its time. Publishing it by hand publishes it now; unscheduling returns it to draft.',
        headers: withIfMatch,
        params: s.idParams,
        body: s.scheduleBody,
        response: { 200: data(s.post), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) =>
      withEtag(
        reply,
        await posts.schedule(
          req.tenant!,
          req.params.id,
          new Date(req.body.publishAt),
          expectedVersion(req, req.body.version),
        ),
      ),
  );

  app.get(
    `${base}/:id/revisions`,
    {
      config: { access: 'posts:read' },
      schema: {
        tags,
        security,
        summary: `The revisions of a ${kind}, newest first`,
        description: 'Every content change stores one; the oldest beyond REVISIONS_PER_POST go.',
        headers,
        params: s.idParams,
        response: { 200: data(z.array(s.revision)), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await posts.revisions(req.tenant!, req.params.id) }),
  );

  app.get(
    `${base}/:id/revisions/:revisionId`,
    {
      config: { access: 'posts:read' },
      schema: {
        tags,
        security,
        summary: 'One revision, with the state it stored',
        headers,
        params: s.revisionParams,
        response: { 200: data(s.revisionDetail), ...errors(400, 401, 404) },
      },
    },
    async (req) => ({ data: await posts.revision(req.tenant!, req.params.id, req.params.revisionId) }),
  );

  app.post(
    `${base}/:id/revisions/:revisionId/restore`,
    {
      config: { access: 'posts:update:own' },
      schema: {
        tags,
        security,
        summary: `Restore a revision: the ${kind} takes its state back (a new version and a new revision)`,
        headers: withIfMatch,
        params: s.revisionParams,
        body: s.transitionBody,
        response: { 200: data(s.post), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) =>
      withEtag(
        reply,
        await posts.restore(req.tenant!, req.params.id, req.params.revisionId, expectedVersion(req, req.body?.version)),
      ),
  );

  app.delete(
    `${base}/:id`,
    {
      config: { access: 'posts:delete:own' },
      schema: {
        tags,
        security,
        summary: `Delete a ${kind}`,
        headers: withIfMatch,
        params: s.idParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await posts.remove(req.tenant!, req.params.id, expectedVersion(req, undefined));
      return reply.code(204).send(null);
    },
  );
}
