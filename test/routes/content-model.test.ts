import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { expectError, fieldsOf } from '../helpers/errors.js';
import {
  createInvitation,
  createMember,
  createPost,
  createTenant,
  createUser,
  PASSWORD,
  type TestTenant,
  type TestUser,
} from '../helpers/factories.js';

/** Kept small so the cap is reached in a few writes; no other test here makes more revisions of one post. */
const REVISIONS_PER_POST = 5;
const UNKNOWN_ID = '5d9f2c86-0a5e-4c8e-9a56-2a7f3b1b6a11';

/** Every SEO, social and feature field a post takes beyond title and body, with a valid value. */
const CONTENT_FIELDS = {
  featured: true,
  featureImage: 'https://cdn.example.com/images/lighthouse.jpg',
  featureImageAlt: 'A lighthouse at dusk',
  featureImageCaption: 'Photo by <b>someone</b>',
  metaTitle: 'Meta title',
  metaDescription: 'Meta description',
  canonicalUrl: 'https://elsewhere.example.org/original',
  ogImage: 'http://img.example.com/og.png',
  ogTitle: 'OG title',
  ogDescription: 'OG description',
  twitterImage: 'https://img.example.com/tw.png',
  twitterTitle: 'Twitter title',
  twitterDescription: 'Twitter description',
} as const;
const CLEARED = Object.fromEntries(
  Object.keys(CONTENT_FIELDS).map((k) => [k, k === 'featured' ? false : null]),
) as Record<keyof typeof CONTENT_FIELDS, unknown>;

type AuthorRef = { id: string; name: string; slug: string; profileImage: string | null };
type Profile = AuthorRef & {
  bio: string | null;
  coverImage: string | null;
  website: string | null;
  location: string | null;
  role: string;
  updatedAt: string;
};
type Revision = { id: string; postVersion: number; reason: string; title: string; createdBy: string | null };

/**
 * The content model (issue 6): pages beside posts, the SEO/social/feature fields, custom
 * excerpts, ordered authors with per-tenant profiles, and revisions with restore.
 */
describe.each(databaseKinds)('content model on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let t: TestTenant;
  let admin: TestUser;
  let editor: TestUser;
  let author: TestUser;
  let coAuthor: TestUser;
  let viewer: TestUser;
  let other: TestTenant;

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db, { REVISIONS_PER_POST: String(REVISIONS_PER_POST) });
    t = await createTenant(app);
    admin = await createMember(app, t, 'admin');
    editor = await createMember(app, t, 'editor');
    author = await createMember(app, t, 'author');
    coAuthor = await createMember(app, t, 'author');
    viewer = await createMember(app, t, 'viewer');
    other = await createTenant(app);
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  const call = (
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    url: string,
    user: TestUser,
    payload?: object,
    tenant: TestTenant = t,
    headers: Record<string, string> = {},
  ) =>
    app.inject({
      method,
      url: `/api/v1${url}`,
      headers: { ...tenant.as(user), ...headers },
      ...(payload !== undefined && { payload }),
    });
  const create = (kindOf: 'posts' | 'pages', user: TestUser, payload: object, tenant: TestTenant = t) =>
    call('POST', `/${kindOf}`, user, payload, tenant);
  const createOk = async (kindOf: 'posts' | 'pages', user: TestUser, payload: object) => {
    const res = await create(kindOf, user, { body: 'Body text', ...payload });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().data;
  };
  const read = async (id: string, kindOf: 'posts' | 'pages' = 'posts') => {
    const res = await call('GET', `/${kindOf}/${id}`, t.owner);
    return res.statusCode === 200 ? res.json().data : null;
  };
  const count = async (table: 'posts' | 'post_revisions', tenantId = t.id) =>
    Number((await tdb.db.query(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [tenantId])).rows[0]?.n);
  const revisionsOf = async (id: string, kindOf: 'posts' | 'pages' = 'posts', tenant = t): Promise<Revision[]> => {
    const res = await call('GET', `/${kindOf}/${id}/revisions`, tenant.owner, undefined, tenant);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data;
  };
  const ids = (list: Array<{ id: string }>) => list.map((x) => x.id);

  describe('pages', () => {
    it('creates, reads and lists pages at /pages, typed page', async () => {
      const res = await create('pages', editor, { title: 'About Us', body: 'Who we are' });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers.etag).toBe('"1"');
      const page = res.json().data;
      expect(page).toMatchObject({
        type: 'page',
        tenantId: t.id,
        title: 'About Us',
        slug: 'about-us',
        status: 'draft',
        authorId: editor.id,
        html: '<p>Who we are</p>\n',
        version: 1,
      });
      expect(await read(page.id, 'pages')).toEqual(page);
      expect((await call('GET', '/pages/about-us', viewer)).json().data).toEqual(page);

      const post = await createPost(app, t, editor, { title: 'A post, not a page' });
      const pages = (await call('GET', '/pages?limit=100', viewer)).json().data;
      expect(ids(pages)).toContain(page.id);
      expect(ids(pages)).not.toContain(post.id);
      expect(pages.every((p: { type: string }) => p.type === 'page')).toBe(true);
      const posts = (await call('GET', '/posts?limit=100', viewer)).json().data;
      expect(ids(posts)).toContain(post.id);
      expect(ids(posts)).not.toContain(page.id);
      expect(posts.every((p: { type: string }) => p.type === 'post')).toBe(true);

      // Pages have the lifecycle of posts.
      const published = await call('POST', `/pages/${page.id}/publish`, editor);
      expect(published.statusCode, published.body).toBe(200);
      expect(published.json().data).toMatchObject({ type: 'page', status: 'published', version: 2 });
      const listed = (await call('GET', '/pages?status=published', viewer)).json().data;
      expect(ids(listed)).toEqual([page.id]);
    });

    it('a page is a 404 under /posts and a post a 404 under /pages, for reads and every write', async () => {
      const page = await createOk('pages', editor, { title: 'Page Only' });
      const post = await createOk('posts', editor, { title: 'Post Only' });
      for (const [wrong, rec] of [
        ['posts', page],
        ['pages', post],
      ] as const) {
        expectError(await call('GET', `/${wrong}/${rec.id}`, t.owner), 404, 'not_found');
        expectError(await call('GET', `/${wrong}/${rec.slug}`, t.owner), 404, 'not_found');
        expectError(await call('PATCH', `/${wrong}/${rec.id}`, t.owner, { title: 'x', version: 1 }), 404, 'not_found');
        for (const action of ['publish', 'unpublish', 'archive', 'unschedule']) {
          expectError(await call('POST', `/${wrong}/${rec.id}/${action}`, t.owner), 404, 'not_found');
        }
        expectError(await call('GET', `/${wrong}/${rec.id}/revisions`, t.owner), 404, 'not_found');
        const [rev] = await revisionsOf(rec.id, wrong === 'posts' ? 'pages' : 'posts');
        expectError(await call('GET', `/${wrong}/${rec.id}/revisions/${rev?.id}`, t.owner), 404, 'not_found');
        expectError(await call('POST', `/${wrong}/${rec.id}/revisions/${rev?.id}/restore`, t.owner), 404, 'not_found');
        expectError(await call('DELETE', `/${wrong}/${rec.id}`, t.owner), 404, 'not_found');
      }
      expect(await read(page.id, 'pages')).toMatchObject({ title: 'Page Only', status: 'draft', version: 1 });
      expect(await read(post.id, 'posts')).toMatchObject({ title: 'Post Only', status: 'draft', version: 1 });
    });

    it('the type comes from the route: a type sent to /posts is ignored on create and refused on update', async () => {
      const res = await create('posts', editor, { title: 'Typed', body: 'x', type: 'page' });
      expect(res.statusCode, res.body).toBe(201);
      const post = res.json().data;
      expect(post.type).toBe('post');
      expectError(await call('GET', `/pages/${post.id}`, t.owner), 404, 'not_found');
      const err = expectError(
        await call('PATCH', `/posts/${post.id}`, editor, { type: 'page', version: 1 }),
        400,
        'validation_failed',
      );
      expect(fieldsOf(err)).toEqual(['body']);
      expect(await read(post.id)).toMatchObject({ type: 'post', version: 1 });
    });

    it('posts and pages share one slug space: derived slugs are numbered, a taken one is 409', async () => {
      const post = await createOk('posts', editor, { title: 'Contact' });
      const page = await createOk('pages', editor, { title: 'Contact' });
      expect(post.slug).toBe('contact');
      expect(page.slug).toBe('contact-2');
      const third = await createOk('posts', editor, { title: 'Contact' });
      expect(third.slug).toBe('contact-3');
      // The post's slug is not a page's, and the other way round.
      expectError(await call('GET', '/pages/contact', t.owner), 404, 'not_found');
      expectError(await call('GET', '/posts/contact-2', t.owner), 404, 'not_found');

      const before = await count('posts');
      expectError(await create('pages', editor, { title: 'Dup', body: 'x', slug: 'contact' }), 409, 'slug_taken');
      expectError(await create('posts', editor, { title: 'Dup', body: 'x', slug: 'contact-2' }), 409, 'slug_taken');
      expect(await count('posts')).toBe(before);
      expectError(await call('PATCH', `/pages/${page.id}`, editor, { slug: 'contact', version: 1 }), 409, 'slug_taken');
      expect(await read(page.id, 'pages')).toMatchObject({ slug: 'contact-2', version: 1 });
      // The same slug is free in another tenant, for a page as for a post.
      const theirs = await create('pages', other.owner, { title: 'Contact', body: 'x' }, other);
      expect(theirs.json().data.slug).toBe('contact');
    });
  });

  describe('content fields', () => {
    it('every feature, SEO and social field round-trips through create, read, update and clear', async () => {
      const created = await createOk('posts', author, { title: 'Fields', ...CONTENT_FIELDS });
      expect(created).toMatchObject(CONTENT_FIELDS);
      expect(await read(created.id)).toEqual(created);
      const listed = (await call('GET', '/posts?limit=100', viewer)).json().data;
      expect(listed.find((p: { id: string }) => p.id === created.id)).toEqual(created);

      const changed = {
        featured: false,
        featureImage: 'https://cdn.example.com/other.webp',
        metaTitle: 'Another meta title',
        ogDescription: 'Another OG description',
      };
      const patched = await call('PATCH', `/posts/${created.id}`, author, { ...changed, version: 1 });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json().data).toEqual({ ...created, ...changed, version: 2, updatedAt: expect.any(String) });

      // null clears each of them (featured is a boolean: false).
      const cleared = await call('PATCH', `/posts/${created.id}`, author, { ...CLEARED, version: 2 });
      expect(cleared.statusCode, cleared.body).toBe(200);
      expect(cleared.json().data).toMatchObject({ ...CLEARED, version: 3 });
      expect(await read(created.id)).toEqual(cleared.json().data);

      // Pages take them too.
      const page = await createOk('pages', editor, { title: 'Page fields', ...CONTENT_FIELDS });
      expect(await read(page.id, 'pages')).toMatchObject({ type: 'page', ...CONTENT_FIELDS });
    });

    it('customExcerpt is stored as sent; excerpt is it, or else derived from the body; excerpt is its former name', async () => {
      const derived = await createOk('posts', author, { title: 'Derived', body: 'The **first** paragraph.\n\nMore.' });
      expect(derived.customExcerpt).toBeNull();
      expect(derived.excerpt).toMatch(/^The first paragraph\./);

      const custom = await createOk('posts', author, {
        title: 'Custom',
        body: 'Body words',
        customExcerpt: 'Hand made',
      });
      expect(custom).toMatchObject({ customExcerpt: 'Hand made', excerpt: 'Hand made' });

      // The former name still works; when both are sent, customExcerpt wins.
      const legacy = await createOk('posts', author, { title: 'Legacy', excerpt: 'Old name' });
      expect(legacy).toMatchObject({ customExcerpt: 'Old name', excerpt: 'Old name' });
      const both = await createOk('posts', author, { title: 'Both', customExcerpt: 'New wins', excerpt: 'Old loses' });
      expect(both).toMatchObject({ customExcerpt: 'New wins', excerpt: 'New wins' });

      // Clearing the custom excerpt brings the derived one back; setting it through `excerpt` too.
      const cleared = await call('PATCH', `/posts/${custom.id}`, author, { customExcerpt: null, version: 1 });
      expect(cleared.json().data).toMatchObject({ customExcerpt: null, excerpt: 'Body words' });
      const viaOld = await call('PATCH', `/posts/${custom.id}`, author, { excerpt: 'Via old name', version: 2 });
      expect(viaOld.json().data).toMatchObject({ customExcerpt: 'Via old name', excerpt: 'Via old name' });
      // A new body changes the derived excerpt, not a custom one.
      const rebodied = await call('PATCH', `/posts/${custom.id}`, author, { body: 'Other words', version: 3 });
      expect(rebodied.json().data).toMatchObject({ customExcerpt: 'Via old name', excerpt: 'Via old name' });
      const derivedAgain = await call('PATCH', `/posts/${derived.id}`, author, { body: 'Fresh text', version: 1 });
      expect(derivedAgain.json().data).toMatchObject({ customExcerpt: null, excerpt: 'Fresh text' });
    });

    it('refuses script and data URLs and over-long texts, naming the field, and writes nothing', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ featureImage: 'javascript:alert(1)' }, 'body.featureImage'],
        [{ featureImage: 'JavaScript:alert(document.cookie)' }, 'body.featureImage'],
        [{ canonicalUrl: 'data:text/html,<script>alert(1)</script>' }, 'body.canonicalUrl'],
        [{ ogImage: 'ftp://files.example.com/a.png' }, 'body.ogImage'],
        [{ twitterImage: '/relative/path.png' }, 'body.twitterImage'],
        [{ metaTitle: 'x'.repeat(301) }, 'body.metaTitle'],
        [{ metaDescription: 'x'.repeat(501) }, 'body.metaDescription'],
        [{ ogTitle: 'x'.repeat(301) }, 'body.ogTitle'],
        [{ featureImageAlt: 'x'.repeat(301) }, 'body.featureImageAlt'],
        [{ customExcerpt: 'x'.repeat(1_001) }, 'body.customExcerpt'],
        [{ featured: 'yes' }, 'body.featured'],
      ];
      const posts = await count('posts');
      const revisions = await count('post_revisions');
      for (const [field, name] of cases) {
        const err = expectError(
          await create('posts', author, { title: 'Bad', body: 'x', ...field }),
          400,
          'validation_failed',
        );
        expect(fieldsOf(err), JSON.stringify(field)).toEqual([name]);
        expectError(await create('pages', editor, { title: 'Bad', body: 'x', ...field }), 400, 'validation_failed');
      }
      expect(await count('posts')).toBe(posts);

      const p = await createOk('posts', author, { title: 'Untouched', featureImage: 'https://ok.example.com/a.png' });
      const afterCreate = await count('post_revisions');
      expect(afterCreate).toBe(revisions + 1);
      for (const [field, name] of cases) {
        const err = expectError(await call('PATCH', `/posts/${p.id}`, author, { ...field, version: 1 }), 400);
        expect(fieldsOf(err), JSON.stringify(field)).toEqual([name]);
      }
      expect(await read(p.id)).toEqual(p);
      expect(await count('post_revisions')).toBe(afterCreate);
    });
  });

  describe('authors', () => {
    it('defaults to the creator as the only author, who is the primary author (authorId)', async () => {
      const post = await createPost(app, t, author, { title: 'Solo' });
      const { slug } = (await call('GET', `/authors/${author.id}`, viewer)).json().data as Profile;
      expect(slug).toMatch(/^user-[0-9a-f]{8}$/);
      const ref = { id: author.id, name: author.name, slug, profileImage: null };
      expect(post).toMatchObject({ authorId: author.id, authors: [ref] });
      expect(await read(post.id)).toMatchObject({ authorId: author.id, authors: [ref] });
    });

    it('keeps several authors in order; the first is authorId; a PATCH replaces and reorders them', async () => {
      const created = await createOk('posts', editor, {
        title: 'Many hands',
        authors: [author.id, coAuthor.id, editor.id],
      });
      expect(ids(created.authors)).toEqual([author.id, coAuthor.id, editor.id]);
      expect(created.authorId).toBe(author.id);
      expect(created.authors.map((a: AuthorRef) => a.name)).toEqual([author.name, coAuthor.name, editor.name]);

      const res = await call('PATCH', `/posts/${created.id}`, editor, {
        authors: [coAuthor.id, author.id],
        version: 1,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().data).toMatchObject({ authorId: coAuthor.id });
      expect(ids(res.json().data.authors)).toEqual([coAuthor.id, author.id]);
      const again = await read(created.id);
      expect(ids(again.authors)).toEqual([coAuthor.id, author.id]);
      expect(again.authorId).toBe(coAuthor.id);
      // A PATCH without authors keeps them.
      const titled = await call('PATCH', `/posts/${created.id}`, editor, { title: 'Renamed', version: 2 });
      expect(ids(titled.json().data.authors)).toEqual([coAuthor.id, author.id]);
      // The staff list filters by the primary author.
      const byCo = (await call('GET', `/posts?author=${coAuthor.id}&limit=100`, viewer)).json().data;
      expect(ids(byCo)).toContain(created.id);
    });

    it('400 unknown_author for an unknown user, a non-member or another tenant’s member, and nothing is written', async () => {
      const outsider = await createUser(app);
      const before = await count('posts');
      for (const stranger of [UNKNOWN_ID, outsider.id, other.owner.id]) {
        const err = expectError(
          await create('posts', editor, { title: 'Nope', body: 'x', authors: [editor.id, stranger] }),
          400,
          'unknown_author',
        );
        expect(err.details).toEqual({ authors: [stranger] });
      }
      expect(await count('posts')).toBe(before);

      const p = await createPost(app, t, editor, { title: 'Kept authors' });
      const err = expectError(
        await call('PATCH', `/posts/${p.id}`, editor, { authors: [outsider.id], title: 'Changed', version: 1 }),
        400,
        'unknown_author',
      );
      expect(err.details).toEqual({ authors: [outsider.id] });
      expect(await read(p.id)).toMatchObject({ title: 'Kept authors', authorId: editor.id, version: 1 });
      expect(ids((await read(p.id)).authors)).toEqual([editor.id]);
      // Not a UUID at all, or an empty list: a validation error on the field.
      const bad = expectError(await create('posts', editor, { title: 'x', body: 'x', authors: ['nope'] }), 400);
      expect(fieldsOf(bad)).toEqual(['body.authors.0']);
      expect(fieldsOf(expectError(await create('posts', editor, { title: 'x', body: 'x', authors: [] }), 400))).toEqual(
        ['body.authors'],
      );
    });

    it('an author cannot leave themselves out (403); an editor may name anyone', async () => {
      const before = await count('posts');
      expectError(await create('posts', author, { title: 'Ghost-written', body: 'x', authors: [coAuthor.id] }), 403);
      expect(await count('posts')).toBe(before);
      const own = await createOk('posts', author, { title: 'Shared', authors: [coAuthor.id, author.id] });
      expect(own.authorId).toBe(coAuthor.id);
      expectError(
        await call('PATCH', `/posts/${own.id}`, author, { authors: [coAuthor.id], version: 1 }),
        403,
        'forbidden',
      );
      expect(ids((await read(own.id)).authors)).toEqual([coAuthor.id, author.id]);
      expect((await read(own.id)).version).toBe(1);

      // Editors (and above) write for others.
      const forOthers = await createOk('posts', editor, { title: 'For them', authors: [author.id] });
      expect(forOthers).toMatchObject({ authorId: author.id });
      expect(ids(forOthers.authors)).toEqual([author.id]);
      const moved = await call('PATCH', `/posts/${forOthers.id}`, admin, { authors: [coAuthor.id], version: 1 });
      expect(moved.statusCode, moved.body).toBe(200);
      expect(moved.json().data.authorId).toBe(coAuthor.id);
    });

    it('a co-author with the author role edits and publishes the post; an author not on it cannot', async () => {
      const outsiderAuthor = await createMember(app, t, 'author');
      const post = await createOk('posts', author, { title: 'Co-written', authors: [author.id, coAuthor.id] });
      const res = await call('PATCH', `/posts/${post.id}`, coAuthor, { title: 'Co-edited', version: 1 });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().data).toMatchObject({ title: 'Co-edited', authorId: author.id });
      expect((await call('POST', `/posts/${post.id}/publish`, coAuthor)).statusCode).toBe(200);

      expectError(
        await call('PATCH', `/posts/${post.id}`, outsiderAuthor, { title: 'No', version: 3 }),
        403,
        'forbidden',
      );
      expectError(await call('POST', `/posts/${post.id}/unpublish`, outsiderAuthor), 403, 'forbidden');
      expectError(await call('DELETE', `/posts/${post.id}`, outsiderAuthor), 403, 'forbidden');
      expect(await read(post.id)).toMatchObject({ title: 'Co-edited', status: 'published', version: 3 });

      // Taken off the post, the co-author can no longer edit it.
      const off = await call('PATCH', `/posts/${post.id}`, author, { authors: [author.id], version: 3 });
      expect(off.statusCode, off.body).toBe(200);
      expectError(await call('PATCH', `/posts/${post.id}`, coAuthor, { title: 'Again', version: 4 }), 403, 'forbidden');
    });

    it('a post shows its authors’ current profile slug and image', async () => {
      const writer = await createMember(app, t, 'author');
      const post = await createPost(app, t, writer, { title: 'Profiled' });
      const patched = await call('PATCH', `/authors/${writer.id}`, writer, {
        slug: `pen-${writer.id.slice(0, 8)}`,
        profileImage: 'https://img.example.com/me.png',
      });
      expect(patched.statusCode, patched.body).toBe(200);
      expect((await read(post.id)).authors).toEqual([
        {
          id: writer.id,
          name: writer.name,
          slug: `pen-${writer.id.slice(0, 8)}`,
          profileImage: 'https://img.example.com/me.png',
        },
      ]);
    });
  });

  describe('authors who leave the tenant', () => {
    // A leaver hands over their authorship (drizzle/0008): co-authored posts keep the others,
    // posts they wrote alone go to the tenant's first owner; authorId stays the first author.
    it('a post written alone goes to the owner; a co-authored one keeps its co-author as primary', async () => {
      const leaver = await createMember(app, t, 'author');
      const stayer = await createMember(app, t, 'author');
      const alone = await createPost(app, t, leaver, { title: 'Left behind' });
      const shared = await call('POST', '/posts', leaver, {
        title: 'Together',
        body: 'b',
        authors: [leaver.id, stayer.id],
      });
      expect(shared.statusCode, shared.body).toBe(201);
      const left = await app.inject({
        method: 'DELETE',
        url: `/api/v1/tenants/${t.id}/members/${leaver.id}`,
        headers: leaver.auth,
      });
      expect(left.statusCode, left.body).toBe(204);
      const readAlone = (await call('GET', `/posts/${alone.id}`, t.owner)).json().data;
      expect(readAlone.authorId).toBe(t.owner.id);
      expect(readAlone.authors.map((a: { id: string }) => a.id)).toEqual([t.owner.id]);
      const readShared = (await call('GET', `/posts/${shared.json().data.id}`, t.owner)).json().data;
      expect(readShared.authorId).toBe(stayer.id);
      expect(readShared.authors.map((a: { id: string }) => a.id)).toEqual([stayer.id]);
    });
  });

  describe('author profiles', () => {
    it('every member gets a slug from their name, numbered when the name is taken in the tenant', async () => {
      const owner = await createUser(app, { name: 'Grace Hopper' });
      const pub = await createTenant(app, owner);
      const ada1 = await createUser(app, { name: 'Ada Lovelace' });
      const ada2 = await createUser(app, { name: 'Ada  Lovelace!' });
      for (const u of [ada1, ada2]) {
        const res = await app.inject({
          method: 'POST',
          url: `/api/v1/tenants/${pub.id}/members`,
          headers: owner.auth,
          payload: { email: u.email, role: 'author' },
        });
        expect(res.statusCode, res.body).toBe(201);
      }
      // An invitation accepted by registering is a member like any other.
      const inv = await createInvitation(app, pub, 'viewer');
      const reg = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: inv.email, password: PASSWORD, name: 'Ada Lovelace' },
      });
      expect(reg.statusCode, reg.body).toBe(201);
      const ada3 = reg.json().data.user.id as string;

      const res = await call('GET', '/authors', owner, undefined, pub);
      expect(res.statusCode, res.body).toBe(200);
      const slugs = Object.fromEntries((res.json().data as Profile[]).map((p) => [p.id, p.slug]));
      expect(slugs).toEqual({
        [owner.id]: 'grace-hopper',
        [ada1.id]: 'ada-lovelace',
        [ada2.id]: 'ada-lovelace-2',
        [ada3]: 'ada-lovelace-3',
      });
      // Per tenant: the same person is plain ada-lovelace in a publication of their own.
      const own = await createTenant(app, ada2);
      expect((await call('GET', `/authors/${ada2.id}`, ada2, undefined, own)).json().data.slug).toBe('ada-lovelace');
    });

    // A regression test: slugs once cut accented letters out ("José Núñez" → jos-n-ez).
    it('author slugs transliterate accented names as post and tag slugs do', async () => {
      const jose = await createUser(app, { name: 'José Núñez' });
      const pub = await createTenant(app, jose);
      expect((await call('GET', `/authors/${jose.id}`, jose, undefined, pub)).json().data.slug).toBe('jose-nunez');
    });

    it('members edit their own profile; owners and admins anyone’s; others get 403', async () => {
      const mine = {
        bio: 'Writes about lighthouses.',
        profileImage: 'https://img.example.com/author.png',
        coverImage: 'https://img.example.com/cover.png',
        website: 'https://author.example.com',
        location: 'Brest',
        slug: `keeper-${author.id.slice(0, 8)}`,
      };
      const res = await call('PATCH', `/authors/${author.id}`, author, mine);
      expect(res.statusCode, res.body).toBe(200);
      const profile = res.json().data as Profile;
      expect(profile).toEqual({
        id: author.id,
        name: author.name,
        role: 'author',
        ...mine,
        updatedAt: expect.any(String),
      });
      expect((await call('GET', `/authors/${author.id}`, viewer)).json().data).toEqual(profile);
      expect((await call('GET', '/authors', viewer)).json().data).toContainEqual(profile);

      // Someone else's: owners and admins only.
      for (const who of [coAuthor, editor, viewer]) {
        expectError(await call('PATCH', `/authors/${author.id}`, who, { bio: 'Hijacked' }), 403, 'forbidden');
      }
      expect((await call('GET', `/authors/${author.id}`, viewer)).json().data.bio).toBe(mine.bio);
      const byAdmin = await call('PATCH', `/authors/${author.id}`, admin, { location: null, bio: 'Edited by admin' });
      expect(byAdmin.statusCode, byAdmin.body).toBe(200);
      expect(byAdmin.json().data).toMatchObject({ location: null, bio: 'Edited by admin', website: mine.website });
      const byOwner = await call('PATCH', `/authors/${viewer.id}`, t.owner, { bio: 'A reader' });
      expect(byOwner.json().data).toMatchObject({ id: viewer.id, bio: 'A reader', role: 'viewer' });
      // A viewer has a profile of their own too.
      expect((await call('PATCH', `/authors/${viewer.id}`, viewer, { location: 'Lyon' })).statusCode).toBe(200);
    });

    it('409 for a slug another author has; 400 for bad fields; 404 for a non-member', async () => {
      const taken = (await call('GET', `/authors/${editor.id}`, viewer)).json().data.slug as string;
      const before = (await call('GET', `/authors/${coAuthor.id}`, viewer)).json().data as Profile;
      expectError(
        await call('PATCH', `/authors/${coAuthor.id}`, coAuthor, { slug: taken, bio: 'x' }),
        409,
        'slug_taken',
      );
      expect((await call('GET', `/authors/${coAuthor.id}`, viewer)).json().data).toEqual(before);
      // Keeping one's own slug is no collision.
      expect((await call('PATCH', `/authors/${coAuthor.id}`, coAuthor, { slug: before.slug })).statusCode).toBe(200);

      for (const [body, field] of [
        [{ website: 'javascript:alert(1)' }, 'body.website'],
        [{ profileImage: 'data:image/png;base64,AAAA' }, 'body.profileImage'],
        [{ slug: 'Not A Slug' }, 'body.slug'],
        [{ email: 'new@example.com' }, 'body'],
        [{ name: 'New name' }, 'body'],
      ] as const) {
        const err = expectError(
          await call('PATCH', `/authors/${coAuthor.id}`, coAuthor, body),
          400,
          'validation_failed',
        );
        expect(fieldsOf(err), JSON.stringify(body)).toEqual([field]);
      }
      expectError(await call('PATCH', `/authors/${coAuthor.id}`, coAuthor, {}), 400, 'empty_patch');

      const outsider = await createUser(app);
      expectError(await call('GET', `/authors/${outsider.id}`, t.owner), 404, 'not_found');
      expectError(await call('PATCH', `/authors/${outsider.id}`, t.owner, { bio: 'x' }), 404, 'not_found');
      // Another tenant's member is not an author here.
      expectError(await call('GET', `/authors/${other.owner.id}`, t.owner), 404, 'not_found');
      expectError(await call('PATCH', `/authors/${other.owner.id}`, t.owner, { bio: 'x' }), 404, 'not_found');
      // And this tenant's authors are not visible from a tenant one does not belong to.
      expectError(await call('GET', '/authors', other.owner, undefined, t), 404);
    });

    it('no email address in any profile or author reference', async () => {
      const members = [t.owner, admin, editor, author, coAuthor, viewer];
      const post = await createOk('posts', editor, { title: 'Everyone', authors: members.map((m) => m.id) });
      const bodies = [
        (await call('GET', '/authors', viewer)).body,
        (await call('GET', `/authors/${author.id}`, viewer)).body,
        (await call('PATCH', `/authors/${viewer.id}`, viewer, { bio: 'Hello' })).body,
        (await call('GET', `/posts/${post.id}`, viewer)).body,
      ];
      const listed = (await call('GET', '/authors', viewer)).json().data as Profile[];
      expect(ids(listed)).toEqual(expect.arrayContaining(members.map((m) => m.id)));
      for (const body of bodies) {
        expect(body).not.toMatch(/email/i);
        for (const m of members) expect(body).not.toContain(m.email);
        expect(body).not.toMatch(/@example\.com/);
      }
      for (const p of listed) {
        expect(Object.keys(p).sort()).toEqual(
          [
            'bio',
            'coverImage',
            'id',
            'location',
            'name',
            'profileImage',
            'role',
            'slug',
            'updatedAt',
            'website',
          ].sort(),
        );
      }
    });
  });

  describe('revisions', () => {
    it('creating stores one revision; each PATCH adds one, newest first, with its snapshot', async () => {
      const post = await createOk('posts', author, { title: 'Rev 1', body: 'Body 1', tags: ['Alpha'] });
      let revs = await revisionsOf(post.id);
      expect(revs).toEqual([
        {
          id: expect.any(String),
          postVersion: 1,
          reason: 'create',
          title: 'Rev 1',
          createdBy: author.id,
          createdAt: expect.any(String),
        },
      ]);
      expect((await call('PATCH', `/posts/${post.id}`, author, { title: 'Rev 2', version: 1 })).statusCode).toBe(200);
      expect((await call('PATCH', `/posts/${post.id}`, editor, { body: 'Body 3', version: 2 })).statusCode).toBe(200);
      revs = await revisionsOf(post.id);
      expect(revs.map((r) => [r.postVersion, r.reason, r.title, r.createdBy])).toEqual([
        [3, 'update', 'Rev 2', editor.id],
        [2, 'update', 'Rev 2', author.id],
        [1, 'create', 'Rev 1', author.id],
      ]);

      const first = await call('GET', `/posts/${post.id}/revisions/${revs[2]?.id}`, viewer);
      expect(first.statusCode, first.body).toBe(200);
      expect(first.json().data).toMatchObject({
        id: revs[2]?.id,
        postVersion: 1,
        reason: 'create',
        snapshot: {
          title: 'Rev 1',
          slug: 'rev-1',
          body: 'Body 1',
          excerpt: null,
          featured: false,
          tags: ['Alpha'],
          authors: [author.id],
        },
      });
      const latest = (await call('GET', `/posts/${post.id}/revisions/${revs[0]?.id}`, viewer)).json().data;
      expect(latest.snapshot).toMatchObject({ title: 'Rev 2', body: 'Body 3', tags: ['Alpha'] });

      // A failed write stores no revision.
      expectError(await call('PATCH', `/posts/${post.id}`, author, { title: 'Stale', version: 1 }), 409);
      expectError(await call('PATCH', `/posts/${post.id}`, viewer, { title: 'No', version: 3 }), 403);
      expect(await revisionsOf(post.id)).toHaveLength(3);
      // Pages keep revisions the same way.
      const page = await createOk('pages', editor, { title: 'Page rev' });
      expect((await revisionsOf(page.id, 'pages')).map((r) => r.reason)).toEqual(['create']);
    });

    it('restore brings back title, body, tags, authors and fields as a new version, with a restore revision', async () => {
      const original = await createOk('posts', editor, {
        title: 'Original title',
        body: 'Original *body*',
        customExcerpt: 'Original excerpt',
        tags: ['Lighthouses', 'Coast'],
        authors: [author.id],
        featured: true,
        metaTitle: null,
      });
      const edited = await call('PATCH', `/posts/${original.id}`, editor, {
        title: 'Edited title',
        body: 'Edited body',
        customExcerpt: null,
        tags: ['Harbours'],
        authors: [coAuthor.id, author.id],
        featured: false,
        metaTitle: 'Edited meta',
        ogImage: 'https://img.example.com/edited.png',
        version: 1,
      });
      expect(edited.statusCode, edited.body).toBe(200);
      const [, createRev] = await revisionsOf(original.id);
      expect(createRev?.reason).toBe('create');

      const res = await call('POST', `/posts/${original.id}/revisions/${createRev?.id}/restore`, editor, {
        version: 2,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers.etag).toBe('"3"');
      const restored = res.json().data;
      expect(restored).toEqual({
        ...original,
        version: 3,
        updatedAt: expect.any(String),
        tags: [expect.objectContaining({ name: 'Lighthouses' }), expect.objectContaining({ name: 'Coast' })],
      });
      expect(restored.html).toBe('<p>Original <em>body</em></p>\n');
      expect(ids(restored.authors)).toEqual([author.id]);
      expect(restored.authorId).toBe(author.id);
      expect(await read(original.id)).toEqual(restored);

      const revs = await revisionsOf(original.id);
      expect(revs.map((r) => [r.postVersion, r.reason, r.title])).toEqual([
        [3, 'restore', 'Original title'],
        [2, 'update', 'Edited title'],
        [1, 'create', 'Original title'],
      ]);
      expect(revs[0]?.createdBy).toBe(editor.id);

      // The update's revision restores the edit again, taking the version from If-Match.
      const back = await call('POST', `/posts/${original.id}/revisions/${revs[1]?.id}/restore`, editor, undefined, t, {
        'if-match': '"3"',
      });
      expect(back.statusCode, back.body).toBe(200);
      expect(back.json().data).toMatchObject({
        title: 'Edited title',
        body: 'Edited body',
        customExcerpt: null,
        featured: false,
        metaTitle: 'Edited meta',
        ogImage: 'https://img.example.com/edited.png',
        authorId: coAuthor.id,
        version: 4,
      });
      expect(back.json().data.tags.map((x: { name: string }) => x.name)).toEqual(['Harbours']);
      expect(ids(back.json().data.authors)).toEqual([coAuthor.id, author.id]);
    });

    it('restore: 409 for a stale version, 403 for a viewer or an author not on the post, 404 for an unknown revision', async () => {
      const writer = await createMember(app, t, 'author');
      const post = await createOk('posts', writer, { title: 'Guarded v1' });
      expect((await call('PATCH', `/posts/${post.id}`, writer, { title: 'Guarded v2', version: 1 })).statusCode).toBe(
        200,
      );
      const [, first] = await revisionsOf(post.id);
      const restore = (who: TestUser, payload?: object) =>
        call('POST', `/posts/${post.id}/revisions/${first?.id}/restore`, who, payload);
      const err = expectError(await restore(writer, { version: 1 }), 409, 'version_conflict');
      expect(err.details).toEqual({ currentVersion: 2 });
      expectError(await restore(viewer), 403, 'forbidden');
      expectError(await restore(coAuthor), 403, 'forbidden');
      expectError(
        await call('POST', `/posts/${post.id}/revisions/${UNKNOWN_ID}/restore`, writer, { version: 2 }),
        404,
        'not_found',
      );
      expect(fieldsOf(expectError(await restore(writer, { version: 2, title: 'x' }), 400))).toEqual(['body']);
      expect(await read(post.id)).toMatchObject({ title: 'Guarded v2', version: 2 });
      expect(await revisionsOf(post.id)).toHaveLength(2);
      // The post's own author may restore it.
      expect((await restore(writer, { version: 2 })).json().data).toMatchObject({ title: 'Guarded v1', version: 3 });
    });

    it(`keeps at most REVISIONS_PER_POST (${REVISIONS_PER_POST}) revisions per post, dropping the oldest`, async () => {
      const post = await createOk('posts', author, { title: 'Capped 1' });
      const bystander = await createOk('posts', author, { title: 'Bystander' });
      for (let v = 1; v <= REVISIONS_PER_POST + 1; v++) {
        const res = await call('PATCH', `/posts/${post.id}`, author, { title: `Capped ${v + 1}`, version: v });
        expect(res.statusCode, res.body).toBe(200);
      }
      const revs = await revisionsOf(post.id);
      const last = REVISIONS_PER_POST + 2;
      expect(revs.map((r) => r.postVersion)).toEqual(Array.from({ length: REVISIONS_PER_POST }, (_, i) => last - i));
      expect(revs.every((r) => r.reason === 'update')).toBe(true);
      const { rows } = await tdb.db.query('SELECT count(*)::int AS n FROM post_revisions WHERE post_id = $1', [
        post.id,
      ]);
      expect(rows[0]?.n).toBe(REVISIONS_PER_POST);
      // Another post's revisions are its own.
      expect(await revisionsOf(bystander.id)).toHaveLength(1);
      // A restore counts too, and the oldest goes.
      const res = await call('POST', `/posts/${post.id}/revisions/${revs.at(-1)?.id}/restore`, author);
      expect(res.statusCode, res.body).toBe(200);
      expect((await revisionsOf(post.id)).map((r) => r.postVersion)).toEqual(
        Array.from({ length: REVISIONS_PER_POST }, (_, i) => last + 1 - i),
      );
    });

    it("a revision of another post, or another tenant's post, is a 404", async () => {
      const a = await createOk('posts', editor, { title: 'Post A' });
      const b = await createOk('posts', editor, { title: 'Post B' });
      const [revB] = await revisionsOf(b.id);
      expectError(await call('GET', `/posts/${a.id}/revisions/${revB?.id}`, t.owner), 404, 'not_found');
      expectError(
        await call('POST', `/posts/${a.id}/revisions/${revB?.id}/restore`, t.owner, { version: 1 }),
        404,
        'not_found',
      );
      expect(await read(a.id)).toMatchObject({ title: 'Post A', version: 1 });
      expectError(await call('GET', `/posts/${a.id}/revisions/${UNKNOWN_ID}`, t.owner), 404, 'not_found');
      expectError(await call('GET', `/posts/${UNKNOWN_ID}/revisions`, t.owner), 404, 'not_found');
      expect(fieldsOf(expectError(await call('GET', `/posts/${a.id}/revisions/nope`, t.owner), 400))).toEqual([
        'params.revisionId',
      ]);

      const theirPost = (await create('posts', other.owner, { title: 'Their post', body: 'x' }, other)).json().data;
      const [theirRev] = await revisionsOf(theirPost.id, 'posts', other);
      for (const [method, url] of [
        ['GET', `/posts/${theirPost.id}/revisions`],
        ['GET', `/posts/${theirPost.id}/revisions/${theirRev?.id}`],
        ['POST', `/posts/${theirPost.id}/revisions/${theirRev?.id}/restore`],
        // Their revision through one of our posts.
        ['GET', `/posts/${a.id}/revisions/${theirRev?.id}`],
        ['POST', `/posts/${a.id}/revisions/${theirRev?.id}/restore`],
      ] as const) {
        expectError(await call(method, url, t.owner), 404, 'not_found');
      }
      expect(await read(a.id)).toMatchObject({ title: 'Post A', version: 1 });
      expect(await revisionsOf(theirPost.id, 'posts', other)).toHaveLength(1);
    });
  });
});
