import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/composition.js';
import { createTestStack } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createPost, createTenant, type TestTenant } from '../helpers/factories.js';
import { waitFor } from '../helpers/jobs.js';

/** Bodies are Markdown, rendered on every save to sanitized HTML, plaintext and reading time. */
describe.each(databaseKinds)('post rendering on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let container: Container;
  let t: TestTenant;

  beforeAll(async () => {
    tdb = await kind.create();
    ({ app, container } = await createTestStack(tdb.db, { QUEUE_POLL_INTERVAL_MS: '50' }));
    await container.startWorkers();
    t = await createTenant(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const patch = (id: string, payload: object) =>
    app.inject({ method: 'PATCH', url: `/api/v1/posts/${id}`, headers: t.as(t.owner), payload });

  it('renders the Markdown body on create, sanitized', async () => {
    const post = await createPost(app, t, t.owner, {
      body: '## Hello\n\nA **bold** claim.<script>alert(1)</script>\n\n<img src="x" onerror="alert(1)">',
    });
    expect(post.html).toContain('<h2>Hello</h2>');
    expect(post.html).toContain('<strong>bold</strong>');
    expect(post.html).not.toContain('<script');
    expect(post.html).not.toContain('onerror');
    expect(post.body).toContain('<script>'); // the Markdown is kept as written
    expect(post.readingTime).toBe(1);
    const { rows } = await tdb.db.query('SELECT plaintext FROM posts WHERE id = $1', [post.id]);
    expect(String(rows[0]?.plaintext)).toMatch(/^Hello\s+A bold claim\.$/);
  });

  it('renders again when the body changes, and only then', async () => {
    const post = await createPost(app, t, t.owner, { body: 'First *draft*.' });
    expect(post.html).toBe('<p>First <em>draft</em>.</p>\n');
    const retitled = await patch(post.id, { title: 'New title', version: post.version });
    expect(retitled.json().data.html).toBe(post.html);
    const rewritten = await patch(post.id, { body: 'word '.repeat(600), version: post.version + 1 });
    expect(rewritten.statusCode, rewritten.body).toBe(200);
    expect(rewritten.json().data.html).toBe(`<p>${'word '.repeat(599)}word</p>\n`);
    expect(rewritten.json().data.readingTime).toBe(2);
  });

  it('a maintenance job renders posts saved before rendering existed', async () => {
    const post = await createPost(app, t, t.owner, { body: 'Old *post*.' });
    await tdb.db.query(`UPDATE posts SET html = '', plaintext = '', reading_time = 0 WHERE id = $1`, [post.id]);
    await container.jobs.enqueue('maintenance', 'render-posts', {});
    const rendered = await waitFor('the backfill to render the post', async () => {
      const p = (await app.inject({ url: `/api/v1/posts/${post.id}`, headers: t.as(t.owner) })).json().data;
      return p.html ? p : undefined;
    });
    expect(rendered).toMatchObject({ html: '<p>Old <em>post</em>.</p>\n', readingTime: 1, version: post.version });
  });
});
