import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { and, asc, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { createHttpPurger } from '../../src/platform/cdn/index.js';
import { tables } from '../../src/platform/db/index.js';
import { jobIdFor } from '../../src/platform/queue/index.js';
import { createTestApp, createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import {
  createMember,
  createPost,
  createTenant,
  type TestTenant,
  type TestUser,
  transitionPost,
} from '../helpers/factories.js';
import { type ModeEnv, modeEnv, queueModes, waitFor, waitForJob } from '../helpers/jobs.js';

const { outbox } = tables;
const UNKNOWN_USER = '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11';

type EventRow = typeof outbox.$inferSelect;
type EventPayload = {
  event: string;
  tenantId: string;
  resource: { type: string; id: string; slug?: string };
  occurredAt: string;
};

/** The content events recorded for a tenant, oldest first (the outbox, read as the owner role). */
async function eventsOf(tdb: TestDatabase, tenantId: string): Promise<EventRow[]> {
  return tdb.db.system
    .select()
    .from(outbox)
    .where(and(eq(outbox.tenantId, tenantId), eq(outbox.queue, 'events')))
    .orderBy(asc(outbox.id));
}
const payloadOf = (row: EventRow | undefined) => row?.payload as EventPayload;

/**
 * Content events: every change to what readers see records one outbox row on the `events`
 * queue in the transaction of the change (post./page. published, updated, unpublished,
 * deleted; tag.*; author.updated; settings.updated). Edits of drafts record nothing, and a
 * write that fails leaves nothing behind. The relay is not running in this part: rows stay.
 */
describe.each(databaseKinds)('content events recorded in the outbox on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const call = (
    t: TestTenant,
    user: TestUser,
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    url: string,
    payload?: object,
    headers: Record<string, string> = {},
  ) =>
    app.inject({
      method,
      url: `/api/v1${url}`,
      headers: { ...t.as(user), ...headers },
      ...(payload !== undefined && { payload }),
    });
  const names = async (t: TestTenant) => (await eventsOf(tdb, t.id)).map((r) => r.name);
  const ok = async (p: ReturnType<typeof call>, status = 200) => {
    const res = await p;
    expect(res.statusCode, res.body).toBe(status);
    return res.json().data;
  };

  it('publishing records one post.published event in the tenant, naming the post', async () => {
    const t = await createTenant(app);
    const other = await createTenant(app);
    const post = await createPost(app, t, t.owner, { title: 'Hello Events' });
    expect(await eventsOf(tdb, t.id)).toEqual([]);

    const before = Date.now();
    await transitionPost(app, t, t.owner, post.id, 'publish');
    const rows = await eventsOf(tdb, t.id);
    expect(rows).toEqual([
      expect.objectContaining({
        queue: 'events',
        name: 'post.published',
        tenantId: t.id,
        runAt: null,
        dispatchedAt: null,
        idempotencyKey: expect.stringMatching(new RegExp(`^event:post\\.published:${post.id}:`)),
      }),
    ]);
    expect(payloadOf(rows[0])).toEqual({
      event: 'post.published',
      tenantId: t.id,
      resource: { type: 'post', id: post.id, slug: 'hello-events' },
      occurredAt: expect.any(String),
    });
    expect(Date.parse(payloadOf(rows[0]).occurredAt)).toBeGreaterThanOrEqual(before - 1_000);
    // Publishing again changes nothing and records nothing; nothing lands in another tenant.
    await transitionPost(app, t, t.owner, post.id, 'publish');
    expect(await names(t)).toEqual(['post.published']);
    expect(await eventsOf(tdb, other.id)).toEqual([]);
  });

  it('edits of drafts record nothing: create, update, tags, authors, restore, schedule, archive', async () => {
    const t = await createTenant(app);
    const editor = await createMember(app, t, 'editor');
    const post = await createPost(app, t, t.owner, { title: 'Quiet draft' });
    await ok(call(t, t.owner, 'PATCH', `/posts/${post.id}`, { title: 'Still quiet', version: 1 }));
    await ok(call(t, t.owner, 'PATCH', `/posts/${post.id}`, { tags: ['News'], authors: [editor.id], version: 2 }));
    await ok(call(t, t.owner, 'PATCH', `/posts/${post.id}`, { featured: true, metaTitle: 'SEO', version: 3 }));
    const revs = await ok(call(t, t.owner, 'GET', `/posts/${post.id}/revisions`));
    await ok(call(t, t.owner, 'POST', `/posts/${post.id}/revisions/${revs.at(-1).id}/restore`, { version: 4 }));
    const publishAt = new Date(Date.now() + 3_600_000).toISOString();
    await ok(call(t, t.owner, 'POST', `/posts/${post.id}/schedule`, { publishAt }));
    await ok(call(t, t.owner, 'POST', `/posts/${post.id}/unschedule`));
    await transitionPost(app, t, t.owner, post.id, 'unpublish');
    await transitionPost(app, t, t.owner, post.id, 'archive');
    await transitionPost(app, t, t.owner, post.id, 'unpublish');
    const page = await ok(call(t, editor, 'POST', '/pages', { title: 'Draft page', body: 'x' }), 201);
    await ok(call(t, editor, 'PATCH', `/pages/${page.id}`, { body: 'y', version: 1 }));
    await ok(call(t, editor, 'POST', `/pages/${page.id}/archive`));
    expect(await eventsOf(tdb, t.id)).toEqual([]);
    // The schedule itself is a publishing job, not a content event.
    const { rows } = await tdb.db.query(`SELECT queue, name FROM outbox WHERE tenant_id = $1`, [t.id]);
    expect(rows).toEqual([{ queue: 'publishing', name: 'publish-scheduled' }]);
  });

  it('a published post: updated on edit and restore, unpublished on unpublish or archive, deleted on delete', async () => {
    const t = await createTenant(app);
    const post = await createPost(app, t, t.owner, { title: 'Lifecycle' });
    const patch = (payload: object) => ok(call(t, t.owner, 'PATCH', `/posts/${post.id}`, payload));
    await transitionPost(app, t, t.owner, post.id, 'publish'); // v2
    await patch({ title: 'Lifecycle, edited', version: 2 }); // v3
    await patch({ tags: ['Only tags change'], version: 3 }); // v4
    const revs = await ok(call(t, t.owner, 'GET', `/posts/${post.id}/revisions`));
    await ok(call(t, t.owner, 'POST', `/posts/${post.id}/revisions/${revs.at(-1).id}/restore`)); // v5
    await transitionPost(app, t, t.owner, post.id, 'publish'); // already published: nothing
    await transitionPost(app, t, t.owner, post.id, 'unpublish'); // v6
    await patch({ body: 'A draft again', version: 6 }); // a draft edit: nothing
    await transitionPost(app, t, t.owner, post.id, 'publish');
    await transitionPost(app, t, t.owner, post.id, 'archive');
    await transitionPost(app, t, t.owner, post.id, 'archive'); // already archived: nothing
    await transitionPost(app, t, t.owner, post.id, 'unpublish'); // archived → draft: not public before
    await transitionPost(app, t, t.owner, post.id, 'publish');
    expect((await call(t, t.owner, 'DELETE', `/posts/${post.id}`)).statusCode).toBe(204);

    const rows = await eventsOf(tdb, t.id);
    expect(rows.map((r) => r.name)).toEqual([
      'post.published',
      'post.updated',
      'post.updated',
      'post.updated',
      'post.unpublished',
      'post.published',
      'post.unpublished',
      'post.published',
      'post.deleted',
    ]);
    for (const row of rows) {
      expect(payloadOf(row)).toMatchObject({
        event: row.name,
        tenantId: t.id,
        resource: { type: 'post', id: post.id },
      });
    }
    // Each event is its own row and its own job.
    expect(new Set(rows.map((r) => r.idempotencyKey)).size).toBe(rows.length);
    expect(payloadOf(rows[0]).resource.slug).toBe('lifecycle');
  });

  it('pages record the same events as page.*', async () => {
    const t = await createTenant(app);
    const page = await ok(call(t, t.owner, 'POST', '/pages', { title: 'About', body: 'Us' }), 201);
    const act = (action: string) => ok(call(t, t.owner, 'POST', `/pages/${page.id}/${action}`));
    await act('publish');
    await ok(call(t, t.owner, 'PATCH', `/pages/${page.id}`, { title: 'About us', version: 2 }));
    await act('unpublish');
    await act('publish');
    await act('archive');
    expect((await call(t, t.owner, 'DELETE', `/pages/${page.id}`)).statusCode).toBe(204);
    const rows = await eventsOf(tdb, t.id);
    expect(rows.map((r) => r.name)).toEqual([
      'page.published',
      'page.updated',
      'page.unpublished',
      'page.published',
      'page.unpublished',
      'page.deleted',
    ]);
    for (const row of rows) expect(payloadOf(row).resource).toMatchObject({ type: 'page', id: page.id, slug: 'about' });
  });

  it('a write that fails records no event: 409 conflicts, 403, 400', async () => {
    const t = await createTenant(app);
    const stranger = await createMember(app, t, 'author');
    const post = await createPost(app, t, t.owner, { title: 'Guarded' });
    const taken = await createPost(app, t, t.owner, { title: 'Taken' });
    await transitionPost(app, t, t.owner, post.id, 'publish'); // v2
    await ok(call(t, t.owner, 'PATCH', `/posts/${post.id}`, { title: 'Guarded, v3', version: 2 }));
    expect(await names(t)).toEqual(['post.published', 'post.updated']);

    const url = `/posts/${post.id}`;
    const [firstRev] = (await ok(call(t, t.owner, 'GET', `${url}/revisions`))).slice(-1);
    expectError(await call(t, t.owner, 'PATCH', url, { title: 'Stale', version: 2 }), 409, 'version_conflict');
    expectError(await call(t, t.owner, 'PATCH', url, { title: 'x' }, { 'if-match': '"1"' }), 409, 'version_conflict');
    expectError(await call(t, t.owner, 'PATCH', url, { slug: taken.slug, version: 3 }), 409, 'slug_taken');
    expectError(await call(t, t.owner, 'POST', `${url}/unpublish`, { version: 2 }), 409, 'version_conflict');
    expectError(await call(t, t.owner, 'POST', `${url}/archive`, undefined, { 'if-match': '"1"' }), 409);
    expectError(await call(t, t.owner, 'POST', `${url}/revisions/${firstRev.id}/restore`, { version: 1 }), 409);
    expectError(await call(t, t.owner, 'DELETE', url, undefined, { 'if-match': '"2"' }), 409, 'version_conflict');
    expectError(await call(t, stranger, 'PATCH', url, { title: 'Not mine', version: 3 }), 403, 'forbidden');
    expectError(await call(t, stranger, 'POST', `${url}/unpublish`), 403, 'forbidden');
    expectError(await call(t, stranger, 'DELETE', url), 403, 'forbidden');
    expectError(await call(t, t.owner, 'PATCH', url, { authors: [UNKNOWN_USER], version: 3 }), 400, 'unknown_author');
    expectError(await call(t, t.owner, 'PATCH', url, { featureImage: 'javascript:alert(1)', version: 3 }), 400);

    expect(await names(t)).toEqual(['post.published', 'post.updated']);
    expect((await ok(call(t, t.owner, 'GET', url))).version).toBe(3);
  });

  it('an event commits with its change: a change that fails at commit leaves no event behind', async () => {
    const t = await createTenant(app);
    const post = await createPost(app, t, t.owner, { title: 'Committed' });
    await transitionPost(app, t, t.owner, post.id, 'publish');
    // A deferred check that refuses one title when the transaction commits, after the event was recorded.
    await tdb.db.query(`
      CREATE FUNCTION test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.title = 'refused at commit' THEN RAISE EXCEPTION 'refused at commit'; END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER UPDATE ON posts
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_at_commit();`);
    try {
      const res = await call(t, t.owner, 'PATCH', `/posts/${post.id}`, { title: 'refused at commit', version: 2 });
      expectError(res, 500, 'internal_error');
      expect(await names(t)).toEqual(['post.published']);
      expect(await ok(call(t, t.owner, 'GET', `/posts/${post.id}`))).toMatchObject({ title: 'Committed', version: 2 });
      expect(await ok(call(t, t.owner, 'GET', `/posts/${post.id}/revisions`))).toHaveLength(1);
      // The same edit with another title commits, with its event.
      await ok(call(t, t.owner, 'PATCH', `/posts/${post.id}`, { title: 'Accepted', version: 2 }));
      expect(await names(t)).toEqual(['post.published', 'post.updated']);
    } finally {
      await tdb.db.query('DROP TRIGGER test_refuse_at_commit ON posts; DROP FUNCTION test_refuse_at_commit();');
    }
  });

  it('a change whose event cannot be recorded does not happen', async () => {
    const t = await createTenant(app);
    const post = await createPost(app, t, t.owner, { title: 'Unrecorded' });
    await transitionPost(app, t, t.owner, post.id, 'publish');
    await tdb.db.query(`
      CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.payload->'resource'->>'slug' = 'refused-event' THEN RAISE EXCEPTION 'outbox refused'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_refuse_event BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION test_refuse_event();`);
    try {
      const res = await call(t, t.owner, 'PATCH', `/posts/${post.id}`, { slug: 'refused-event', version: 2 });
      expectError(res, 500, 'internal_error');
      expect(await ok(call(t, t.owner, 'GET', `/posts/${post.id}`))).toMatchObject({ slug: 'unrecorded', version: 2 });
      expect(await ok(call(t, t.owner, 'GET', `/posts/${post.id}/revisions`))).toHaveLength(1);
      expect(await names(t)).toEqual(['post.published']);
    } finally {
      await tdb.db.query('DROP TRIGGER test_refuse_event ON outbox; DROP FUNCTION test_refuse_event();');
    }
  });

  it('tags: created, updated and deleted events; a refused tag write records none', async () => {
    const t = await createTenant(app);
    const author = await createMember(app, t, 'author');
    const tag = await ok(call(t, t.owner, 'POST', '/tags', { name: 'Engineering' }), 201);
    await ok(call(t, t.owner, 'PATCH', `/tags/${tag.id}`, { name: 'Platform', slug: 'platform' }));
    await ok(call(t, t.owner, 'POST', '/tags', { name: 'Other', slug: 'other' }), 201);
    expectError(await call(t, t.owner, 'POST', '/tags', { name: 'Clash', slug: 'other' }), 409, 'slug_taken');
    expectError(await call(t, t.owner, 'PATCH', `/tags/${tag.id}`, { slug: 'other' }), 409, 'slug_taken');
    expectError(await call(t, author, 'POST', '/tags', { name: 'Nope' }), 403, 'forbidden');
    expectError(await call(t, t.owner, 'PATCH', `/tags/${tag.id}`, {}), 400, 'empty_patch');
    expect((await call(t, t.owner, 'DELETE', `/tags/${tag.id}`)).statusCode).toBe(204);
    expectError(await call(t, t.owner, 'DELETE', `/tags/${tag.id}`), 404);

    const rows = await eventsOf(tdb, t.id);
    expect(rows.map((r) => [r.name, payloadOf(r).resource])).toEqual([
      ['tag.created', { type: 'tag', id: tag.id, slug: 'engineering' }],
      ['tag.updated', { type: 'tag', id: tag.id, slug: 'platform' }],
      ['tag.created', { type: 'tag', id: expect.any(String), slug: 'other' }],
      ['tag.deleted', { type: 'tag', id: tag.id, slug: 'platform' }],
    ]);
  });

  it('an author profile update records author.updated; a refused one records none', async () => {
    const t = await createTenant(app);
    const author = await createMember(app, t, 'author');
    const ownerSlug = (await ok(call(t, t.owner, 'GET', `/authors/${t.owner.id}`))).slug;
    await ok(call(t, author, 'PATCH', `/authors/${author.id}`, { bio: 'Hello', slug: 'the-author' }));
    await ok(call(t, t.owner, 'PATCH', `/authors/${author.id}`, { location: 'Nantes' }));
    expectError(await call(t, author, 'PATCH', `/authors/${t.owner.id}`, { bio: 'x' }), 403, 'forbidden');
    expectError(await call(t, author, 'PATCH', `/authors/${author.id}`, { slug: ownerSlug }), 409, 'slug_taken');
    expectError(await call(t, author, 'PATCH', `/authors/${author.id}`, { website: 'javascript:x' }), 400);
    const rows = await eventsOf(tdb, t.id);
    expect(rows.map((r) => [r.name, payloadOf(r).resource])).toEqual([
      ['author.updated', { type: 'author', id: author.id, slug: 'the-author' }],
      ['author.updated', { type: 'author', id: author.id, slug: 'the-author' }],
    ]);
  });

  it('replacing the settings records settings.updated; a refused replacement records none', async () => {
    const t = await createTenant(app);
    const editor = await createMember(app, t, 'editor');
    const put = (user: TestUser, payload: object) =>
      app.inject({ method: 'PUT', url: `/api/v1/tenants/${t.id}/settings`, headers: user.auth, payload });
    expectError(await put(editor, { title: 'Editors may not' }), 403, 'forbidden');
    expectError(await put(t.owner, { lang: 'not a language' }), 400, 'validation_failed');
    expect(await eventsOf(tdb, t.id)).toEqual([]);
    const res = await put(t.owner, { title: 'The Quire Times', lang: 'en' });
    expect(res.statusCode, res.body).toBe(200);
    const rows = await eventsOf(tdb, t.id);
    expect(rows.map((r) => [r.name, payloadOf(r).resource])).toEqual([
      ['settings.updated', { type: 'settings', id: t.id }],
    ]);
  });
});

interface PurgeRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  keys: string[];
  body: string;
  status: number;
}

/** A CDN purge endpoint on a real port: records every request; answers 500 while a key is set to fail. */
async function startPurgeEndpoint() {
  const requests: PurgeRequest[] = [];
  const failuresLeft = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const keys = String(req.headers['surrogate-key'] ?? '')
        .split(' ')
        .filter(Boolean);
      const failing = keys.find((k) => (failuresLeft.get(k) ?? 0) > 0);
      if (failing) failuresLeft.set(failing, (failuresLeft.get(failing) ?? 1) - 1);
      const status = failing ? 500 : 200;
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        keys,
        body: Buffer.concat(chunks).toString('utf8'),
        status,
      });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(failing ? '{"status":"error"}' : '{"status":"ok"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/service/purge`,
    requests,
    /** The next `times` purges that include `key` answer 500. */
    failFor: (key: string, times: number) => failuresLeft.set(key, times),
    /** Requests that purged `key`. */
    forKey: (key: string) => requests.filter((r) => r.keys.includes(key)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const PURGE_TOKEN = 'purge-token-0123456789';

describe('the HTTP purge adapter', () => {
  let cdn: Awaited<ReturnType<typeof startPurgeEndpoint>>;
  beforeAll(async () => {
    cdn = await startPurgeEndpoint();
  });
  afterAll(async () => {
    await cdn?.close();
  });

  it('POSTs the keys as Surrogate-Key and JSON; the token is a bearer token unless a header is named', async () => {
    await createHttpPurger({ url: cdn.url, token: 'bearer-token', timeoutMs: 5_000 }).purge(['t-a', 'post-b']);
    const [bearer] = cdn.forKey('post-b');
    expect(bearer).toMatchObject({ method: 'POST', keys: ['t-a', 'post-b'], status: 200 });
    expect(bearer?.headers.authorization).toBe('Bearer bearer-token');
    expect(JSON.parse(bearer?.body ?? '')).toEqual({ surrogate_keys: ['t-a', 'post-b'] });

    await createHttpPurger({ url: cdn.url, token: 'k', tokenHeader: 'Fastly-Key', timeoutMs: 5_000 }).purge(['tag-c']);
    const [named] = cdn.forKey('tag-c');
    expect(named?.headers['fastly-key']).toBe('k');
    expect(named?.headers.authorization).toBeUndefined();

    await createHttpPurger({ url: cdn.url, timeoutMs: 5_000 }).purge(['author-d']);
    const [anonymous] = cdn.forKey('author-d');
    expect(anonymous?.headers.authorization).toBeUndefined();
    expect(anonymous?.headers['surrogate-key']).toBe('author-d');
  });

  it('sends nothing for no keys, and fails when the endpoint answers an error', async () => {
    const purger = createHttpPurger({ url: cdn.url, token: 't', timeoutMs: 5_000 });
    const before = cdn.requests.length;
    await purger.purge([]);
    expect(cdn.requests.length).toBe(before);
    cdn.failFor('post-broken', 1);
    await expect(purger.purge(['post-broken'])).rejects.toThrow(/500/);
    await expect(purger.purge(['post-broken'])).resolves.toBeUndefined();
    expect(cdn.forKey('post-broken').map((r) => r.status)).toEqual([500, 200]);
  });
});

/**
 * Delivery: the relay moves content events to the `events` queue, whose jobs purge the CDN
 * through the HTTP adapter (CDN_PURGE_URL, the token in CDN_PURGE_TOKEN_HEADER) at a real
 * endpoint this suite runs. Retries are shortened (pg-boss rounds the delay up to 1 s).
 */
describe.each(queueModes)('content events delivered to the CDN, $name', (mode) => {
  let menv: ModeEnv;
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let cdn: Awaited<ReturnType<typeof startPurgeEndpoint>>;
  let t: TestTenant;

  beforeAll(async () => {
    cdn = await startPurgeEndpoint();
    menv = await modeEnv(mode, 'events');
    tdb = await mode.kind.create();
    ({ app, container } = await createTestStack(
      tdb.db,
      {
        ...menv.env,
        CDN_PURGE_URL: cdn.url,
        CDN_PURGE_TOKEN: PURGE_TOKEN,
        CDN_PURGE_TOKEN_HEADER: 'Fastly-Key',
      },
      { policies: { events: { attempts: 4, backoff: { type: 'fixed', delayMs: 100 } } } },
    ));
    await container.startWorkers();
    t = await createTenant(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
    await menv?.cleanup();
    await cdn?.close();
  });

  /** The one event row recorded for `resourceId` under `name`, once it is there. */
  const eventRow = (name: string, resourceId: string, tenantId = t.id) =>
    waitFor(`a ${name} event for ${resourceId}`, async () =>
      (await eventsOf(tdb, tenantId)).find((r) => r.name === name && payloadOf(r).resource.id === resourceId),
    );

  it('uses the HTTP purge adapter', () => {
    expect(container.purger.kind).toBe('http');
  });

  it('publishing purges the tenant and post keys at the CDN, with the token in its header', async () => {
    const post = await createPost(app, t, t.owner, { title: 'Purge me' });
    await transitionPost(app, t, t.owner, post.id, 'publish');
    const key = `post-${post.id}`;
    const [req] = await waitFor('the purge of the published post', () => cdn.forKey(key).length > 0 && cdn.forKey(key));
    expect(req).toMatchObject({ method: 'POST', url: '/service/purge', status: 200 });
    expect(req?.headers['surrogate-key']).toBe(`t-${t.id} ${key}`);
    expect(req?.headers['fastly-key']).toBe(PURGE_TOKEN);
    expect(req?.headers.authorization).toBeUndefined();
    expect(req?.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(req?.body ?? '')).toEqual({ surrogate_keys: [`t-${t.id}`, key] });

    // The event's row was dispatched and its job completed on the `events` queue.
    const row = await eventRow('post.published', post.id);
    const job = await waitForJob(app, t.as(t.owner), jobIdFor(row.idempotencyKey), ['completed', 'failed']);
    expect(job).toMatchObject({ queue: 'events', name: 'post.published', state: 'completed', tenantId: t.id });
    expect(job.result).toEqual({ purged: [`t-${t.id}`, key] });
    await waitFor('the row to be marked dispatched', async () =>
      (await eventsOf(tdb, t.id)).some((r) => r.id === row.id && r.dispatchedAt !== null),
    );
  });

  it('a purge endpoint answering 500 makes the job retry until the purge goes through', async () => {
    const post = await createPost(app, t, t.owner, { title: 'Flaky CDN' });
    const key = `post-${post.id}`;
    cdn.failFor(key, 1);
    await transitionPost(app, t, t.owner, post.id, 'publish');
    const reqs = await waitFor('a second purge after the 500', () => cdn.forKey(key).length >= 2 && cdn.forKey(key));
    expect(reqs.map((r) => r.status)).toEqual([500, 200]);
    for (const r of reqs) {
      expect(r.keys).toEqual([`t-${t.id}`, key]);
      expect(r.headers['fastly-key']).toBe(PURGE_TOKEN);
    }
    const row = await eventRow('post.published', post.id);
    const job = await waitForJob(app, t.as(t.owner), jobIdFor(row.idempotencyKey), ['completed', 'failed']);
    expect(job).toMatchObject({ state: 'completed', attempts: 2 });
  });

  it('a scheduled publication by the job platform records post.published (and page.published), and purges', async () => {
    const post = await createPost(app, t, t.owner, { title: 'Scheduled post' });
    const pageRes = await app.inject({
      method: 'POST',
      url: '/api/v1/pages',
      headers: t.as(t.owner),
      payload: { title: 'Scheduled page', body: 'x' },
    });
    expect(pageRes.statusCode, pageRes.body).toBe(201);
    const page = pageRes.json().data as { id: string; slug: string };
    // Far enough ahead for both schedules to land first, on a loaded machine too.
    const publishAt = new Date(Date.now() + 4_000).toISOString();
    for (const [kindOf, id] of [
      ['posts', post.id],
      ['pages', page.id],
    ] as const) {
      const res = await app.inject({
        method: 'POST',
        url: `/api/v1/${kindOf}/${id}/schedule`,
        headers: t.as(t.owner),
        payload: { publishAt },
      });
      expect(res.statusCode, res.body).toBe(200);
    }
    // Nothing is public yet: no content event until the job publishes.
    expect((await eventsOf(tdb, t.id)).filter((r) => [post.id, page.id].includes(payloadOf(r).resource.id))).toEqual(
      [],
    );

    const postEvent = await eventRow('post.published', post.id);
    const pageEvent = await eventRow('page.published', page.id);
    expect(payloadOf(postEvent)).toMatchObject({
      tenantId: t.id,
      resource: { type: 'post', id: post.id, slug: 'scheduled-post' },
    });
    expect(payloadOf(pageEvent).resource).toEqual({ type: 'page', id: page.id, slug: page.slug });
    const published = await app.inject({ url: `/api/v1/posts/${post.id}`, headers: t.as(t.owner) });
    expect(published.json().data).toMatchObject({ status: 'published', publishedAt: publishAt });
    // Published once, so one event each.
    const rows = await eventsOf(tdb, t.id);
    expect(rows.filter((r) => payloadOf(r).resource.id === post.id).map((r) => r.name)).toEqual(['post.published']);
    await waitFor('the purge of the scheduled post', () => cdn.forKey(`post-${post.id}`).length > 0);
    await waitFor('the purge of the scheduled page', () => cdn.forKey(`post-${page.id}`).length > 0);
  });

  it('tag, author and settings events purge the tenant key and their own record key', async () => {
    const tenant = await createTenant(app);
    const tagRes = await app.inject({
      method: 'POST',
      url: '/api/v1/tags',
      headers: tenant.as(tenant.owner),
      payload: { name: 'Purged tag' },
    });
    expect(tagRes.statusCode, tagRes.body).toBe(201);
    const tag = tagRes.json().data as { id: string };
    const profile = await app.inject({
      method: 'PATCH',
      url: `/api/v1/authors/${tenant.owner.id}`,
      headers: tenant.as(tenant.owner),
      payload: { bio: 'Purge my profile' },
    });
    expect(profile.statusCode, profile.body).toBe(200);
    const settings = await app.inject({
      method: 'PUT',
      url: `/api/v1/tenants/${tenant.id}/settings`,
      headers: tenant.owner.auth,
      payload: { title: 'Purged settings' },
    });
    expect(settings.statusCode, settings.body).toBe(200);

    const tenantKey = `t-${tenant.id}`;
    const purged = await waitFor('three purges of the tenant', () => {
      const reqs = cdn.forKey(tenantKey);
      return reqs.length >= 3 && reqs;
    });
    expect(purged.map((r) => r.headers['surrogate-key']).sort()).toEqual(
      [tenantKey, `${tenantKey} tag-${tag.id}`, `${tenantKey} author-${tenant.owner.id}`].sort(),
    );
  });
});
