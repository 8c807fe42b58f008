import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tagSlugOf } from '../../src/modules/tags/service.js';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError } from '../helpers/errors.js';
import { createMember, createPost, createTenant, type TestTenant, type TestUser } from '../helpers/factories.js';

describe('tagSlugOf', () => {
  it.each([
    ['Engineering Notes', 'engineering-notes'],
    ['  Hello,   World!  ', 'hello-world'],
    ['Ünïcode & Co', 'unicode-and-co'],
    ['#Internal Only', 'hash-internal-only'],
    ['🎉', 'tag'],
  ])('%s → %s', (name, slug) => expect(tagSlugOf(name)).toBe(slug));
});

describe.each(databaseKinds)('tag routes on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let editor: TestUser;
  let author: TestUser;
  let viewer: TestUser;
  let other: TestTenant;

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
    t = await createTenant(app);
    editor = await createMember(app, t, 'editor');
    author = await createMember(app, t, 'author');
    viewer = await createMember(app, t, 'viewer');
    other = await createTenant(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const call = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    tenant: TestTenant,
    user: TestUser,
    payload?: object,
  ) => app.inject({ method, url: `/api/v1${url}`, headers: tenant.as(user), ...(payload && { payload }) });

  it('creates, reads, renames and deletes a tag; roles below editor only read', async () => {
    const created = await call('POST', '/tags', t, editor, { name: 'Engineering Notes', description: 'How we build' });
    expect(created.statusCode, created.body).toBe(201);
    const tag = created.json().data;
    expect(tag).toMatchObject({
      name: 'Engineering Notes',
      slug: 'engineering-notes',
      description: 'How we build',
      visibility: 'public',
      postCount: 0,
    });
    expect((await call('GET', `/tags/${tag.id}`, t, viewer)).json().data).toEqual(tag);
    expectError(await call('POST', '/tags', t, author, { name: 'Nope' }), 403, 'forbidden');
    expectError(await call('PATCH', `/tags/${tag.id}`, t, viewer, { name: 'Nope' }), 403, 'forbidden');

    const renamed = await call('PATCH', `/tags/${tag.id}`, t, t.owner, { name: 'Engineering', slug: 'eng' });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json().data).toMatchObject({ name: 'Engineering', slug: 'eng' });
    expectError(await call('PATCH', `/tags/${tag.id}`, t, t.owner, {}), 400, 'empty_patch');

    expect((await call('DELETE', `/tags/${tag.id}`, t, editor)).statusCode).toBe(204);
    expectError(await call('GET', `/tags/${tag.id}`, t, viewer), 404, 'not_found');
    expectError(await call('DELETE', `/tags/${tag.id}`, t, editor), 404, 'not_found');
  });

  it('derives internal visibility from a # name, refuses a taken slug and bad input', async () => {
    const internal = await call('POST', '/tags', t, t.owner, { name: '#newsletter' });
    expect(internal.json().data).toMatchObject({ slug: 'hash-newsletter', visibility: 'internal' });
    expectError(
      await call('POST', '/tags', t, t.owner, { name: 'Newsletter', slug: 'hash-newsletter' }),
      409,
      'slug_taken',
    );
    expectError(await call('POST', '/tags', t, t.owner, { name: '' }), 400, 'validation_failed');
    expectError(await call('POST', '/tags', t, t.owner, { name: 'x', slug: 'Not A Slug' }), 400, 'validation_failed');
    expectError(await call('POST', '/tags', t, t.owner, { name: 'x', extra: 1 }), 400, 'validation_failed');
  });

  it('posts take tag names in order, create the missing tags and reuse existing ones by slug', async () => {
    const existing = (await call('POST', '/tags', t, t.owner, { name: 'Product' })).json().data;
    const post = await createPost(app, t, author, { title: 'Tagged' });
    const patched = await call('PATCH', `/posts/${post.id}`, t, author, {
      version: post.version,
      tags: ['Release Notes', 'product', 'Release notes'],
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const tags = patched.json().data.tags;
    // "product" is the existing Product tag; the second "Release notes" is the first one again.
    expect(tags.map((x: { slug: string }) => x.slug)).toEqual(['release-notes', 'product']);
    expect(tags[1].id).toBe(existing.id);
    expect(tags[0].name).toBe('Release Notes');

    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/posts',
      headers: t.as(author),
      payload: { title: 'Second', body: 'x', tags: ['Product', 'Release Notes'] },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().data.tags.map((x: { slug: string }) => x.slug)).toEqual(['product', 'release-notes']);

    // Reads and lists carry the tags in order; counts follow.
    const read = await call('GET', `/posts/${post.id}`, t, viewer);
    expect(read.json().data.tags.map((x: { slug: string }) => x.slug)).toEqual(['release-notes', 'product']);
    const list = (await call('GET', '/posts?limit=100', t, viewer)).json().data;
    expect(list.find((p: { id: string }) => p.id === post.id).tags).toHaveLength(2);
    const product = (await call('GET', `/tags/${existing.id}`, t, viewer)).json().data;
    expect(product.postCount).toBe(2);

    // [] removes them all; deleting a tag takes it off its posts.
    const cleared = await call('PATCH', `/posts/${post.id}`, t, author, { version: post.version + 1, tags: [] });
    expect(cleared.json().data.tags).toEqual([]);
    expect((await call('DELETE', `/tags/${existing.id}`, t, editor)).statusCode).toBe(204);
    const second = created.json().data;
    expect(
      (await call('GET', `/posts/${second.id}`, t, viewer)).json().data.tags.map((x: { slug: string }) => x.slug),
    ).toEqual(['release-notes']);
  });

  it("another tenant's tags are a 404 and never attach to this tenant's posts", async () => {
    const theirs = (await call('POST', '/tags', other, other.owner, { name: 'Secret Plans' })).json().data;
    expectError(await call('GET', `/tags/${theirs.id}`, t, t.owner), 404, 'not_found');
    expectError(await call('PATCH', `/tags/${theirs.id}`, t, t.owner, { name: 'Mine' }), 404, 'not_found');
    expectError(await call('DELETE', `/tags/${theirs.id}`, t, t.owner), 404, 'not_found');
    const listed = (await call('GET', '/tags', t, t.owner)).json().data.map((x: { id: string }) => x.id);
    expect(listed).not.toContain(theirs.id);
    // The same name in this tenant is a tag of this tenant, not theirs.
    const post = await createPost(app, t, t.owner);
    const patched = await call('PATCH', `/posts/${post.id}`, t, t.owner, {
      version: post.version,
      tags: ['Secret Plans'],
    });
    expect(patched.json().data.tags[0].id).not.toBe(theirs.id);
    expect((await call('GET', `/tags/${theirs.id}`, other, other.owner)).json().data.postCount).toBe(0);
  });
});
