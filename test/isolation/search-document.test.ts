import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { databaseKinds, type TestDatabase } from '../helpers/db.js';
import { createTenant, type TestTenant } from '../helpers/factories.js';

/**
 * `posts.search_vector`: written by triggers only (drizzle/0007_content_model.sql), never by
 * the app. Title weight A, custom excerpt and public tag names B, body plaintext C, in the
 * text search configuration of the tenant's language; kept current in the transaction of
 * every write that changes it (the post, its tags, a tag's name or visibility, the tenant's
 * language). Checked here by reading the stored vector, through the API's own writes.
 */

/** `'word':1A,3 'other':2B` → word → its weights (D is printed without a letter). */
function parseVector(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of text.matchAll(/'((?:[^']|'')+)'(?::([0-9A-D,]+))?/g)) {
    const word = (m[1] ?? '').replace(/''/g, "'");
    const weights = (m[2] ?? '').split(',').map((p) => p.match(/[A-D]$/)?.[0] ?? 'D');
    out.set(word, new Set(weights));
  }
  return out;
}

describe.each(databaseKinds)('the search document on $name', (kind) => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  let en: TestTenant;

  beforeAll(async () => {
    tdb = await kind.create();
    app = await createTestApp(tdb.db);
    en = await createTenant(app);
    await setLang(en, 'en');
  });
  afterAll(async () => {
    await app?.close();
    await tdb?.drop();
  });

  async function setLang(t: TestTenant, lang: string) {
    const res = await app.inject({
      method: 'PUT',
      url: `/api/v1/tenants/${t.id}/settings`,
      headers: t.owner.auth,
      payload: { title: 'Search', lang },
    });
    expect(res.statusCode, res.body).toBe(200);
  }
  const api = async (t: TestTenant, method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) => {
    const res = await app.inject({
      method,
      url: `/api/v1${url}`,
      headers: t.as(t.owner),
      ...(payload !== undefined && { payload }),
    });
    expect(res.statusCode, res.body).toBeLessThan(300);
    return res.statusCode === 204 ? undefined : res.json().data;
  };
  const newPost = (t: TestTenant, payload: object, type: 'posts' | 'pages' = 'posts') =>
    api(t, 'POST', `/${type}`, { body: '', ...payload }) as Promise<{
      id: string;
      version: number;
      tags: Array<{ id: string; name: string }>;
    }>;
  const vectorText = async (id: string) => {
    const { rows } = await tdb.db.query('SELECT search_vector::text AS v FROM posts WHERE id = $1', [id]);
    expect(rows).toHaveLength(1);
    return String(rows[0]?.v);
  };
  const lexemes = async (id: string) => parseVector(await vectorText(id));
  /** Whether the stored document matches `to_tsquery(config, query)`. */
  const matches = async (id: string, query: string, config = 'english') => {
    const { rows } = await tdb.db.query(
      'SELECT search_vector @@ to_tsquery($2::regconfig, $3) AS m FROM posts WHERE id = $1',
      [id, config, query],
    );
    return rows[0]?.m === true;
  };

  it('weights the title A, the custom excerpt and public tag names B, the body C', async () => {
    const post = await newPost(en, {
      title: 'Zebra crossings',
      customExcerpt: 'Giraffe necks',
      tags: ['Pelican'],
      body: 'Walrus *tusks* and more.',
    });
    const lex = await lexemes(post.id);
    expect(lex.get('zebra')).toEqual(new Set(['A']));
    expect(lex.get('cross')).toEqual(new Set(['A']));
    expect(lex.get('giraff')).toEqual(new Set(['B']));
    expect(lex.get('pelican')).toEqual(new Set(['B']));
    expect(lex.get('walrus')).toEqual(new Set(['C']));
    expect(lex.get('tusk')).toEqual(new Set(['C']));
    // Markdown is indexed as its plaintext: no markup in the document.
    expect([...lex.keys()].some((w) => /[*<>]/.test(w))).toBe(false);

    expect(await matches(post.id, 'zebra:A')).toBe(true);
    expect(await matches(post.id, 'zebra:BCD')).toBe(false);
    expect(await matches(post.id, 'pelican:B & giraffe:B')).toBe(true);
    expect(await matches(post.id, 'walrus:C')).toBe(true);
    expect(await matches(post.id, 'walrus:AB')).toBe(false);
    expect(await matches(post.id, 'unicorn')).toBe(false);

    // Pages have a document too.
    const page = await newPost(en, { title: 'Okapi page', body: 'Body' }, 'pages');
    expect((await lexemes(page.id)).get('okapi')).toEqual(new Set(['A']));
  });

  it('ranks a title match above an excerpt match above a body match', async () => {
    const inTitle = await newPost(en, { title: 'Narwhal', body: 'Other words' });
    const inExcerpt = await newPost(en, { title: 'Other', customExcerpt: 'Narwhal', body: 'Other words' });
    const inBody = await newPost(en, { title: 'Other', body: 'Narwhal' });
    const { rows } = await tdb.db.query(
      `SELECT id FROM posts WHERE tenant_id = $1 AND search_vector @@ to_tsquery('english', 'narwhal')
        ORDER BY ts_rank(search_vector, to_tsquery('english', 'narwhal')) DESC`,
      [en.id],
    );
    expect(rows.map((r) => r.id)).toEqual([inTitle.id, inExcerpt.id, inBody.id]);
  });

  it('stems English words in an English tenant, and in a tenant that never set a language (settings say en)', async () => {
    const post = await newPost(en, { title: 'Runners', body: 'The runners were running quickly.' });
    const lex = await lexemes(post.id);
    expect(lex.has('run')).toBe(true);
    expect(lex.has('runner')).toBe(true);
    expect(lex.has('running')).toBe(false);
    // English stop words are not indexed.
    expect(lex.has('the')).toBe(false);
    expect(await matches(post.id, 'runs')).toBe(true);
    const { rows } = await tdb.db.query(
      `SELECT search_vector @@ plainto_tsquery('english', 'they run') AS m FROM posts WHERE id = $1`,
      [post.id],
    );
    expect(rows[0]?.m).toBe(true);

    const unset = await createTenant(app);
    const stemmed = await newPost(unset, { title: 'Runners', body: 'The runners were running quickly.' });
    const lexUnset = await lexemes(stemmed.id);
    expect(lexUnset.has('run')).toBe(true);
    expect(lexUnset.has('running')).toBe(false);
    expect(lexUnset.has('the')).toBe(false);
    // A language without a text search configuration indexes words as written.
    const klingon = await createTenant(app);
    await setLang(klingon, 'tlh');
    const unstemmed = await newPost(klingon, { title: 'Runners', body: 'The runners were running quickly.' });
    const raw = await lexemes(unstemmed.id);
    expect(raw.has('running')).toBe(true);
    expect(raw.has('run')).toBe(false);
    expect(raw.has('the')).toBe(true);
  });

  it("a tenant switching its language to de re-indexes every post in German, and only that tenant's", async () => {
    const de = await createTenant(app);
    await setLang(de, 'en');
    const bystander = await newPost(en, { title: 'Die Häuser am Meer', body: 'Viele Häuser' });
    const bystanderBefore = await vectorText(bystander.id);
    const posts = [
      await newPost(de, { title: 'Die Häuser am Meer', body: 'Viele Häuser', tags: ['Bücher'] }),
      await newPost(de, { title: 'Gärten', customExcerpt: 'Die Häuser', body: 'Bäume' }, 'pages'),
    ];
    for (const p of posts) expect(await matches(p.id, 'haus', 'german')).toBe(false);
    expect((await lexemes(posts[0]!.id)).get('häuser')).toEqual(new Set(['A', 'C']));

    await setLang(de, 'de');
    const [house, garden] = posts;
    expect(await matches(house!.id, 'haus:A', 'german')).toBe(true);
    expect(await matches(house!.id, 'haus:C', 'german')).toBe(true);
    expect(await matches(house!.id, 'buch:B', 'german')).toBe(true);
    expect(await matches(garden!.id, 'haus:B', 'german')).toBe(true);
    expect(await matches(garden!.id, 'baum:C', 'german')).toBe(true);
    const lex = await lexemes(house!.id);
    expect(lex.has('häuser')).toBe(false);
    // German stop words go too.
    expect(lex.has('die')).toBe(false);
    expect(await vectorText(bystander.id)).toBe(bystanderBefore);

    // New posts in the tenant are indexed in German; a regional tag is the same language.
    const later = await newPost(de, { title: 'Neue Häuser' });
    expect(await matches(later.id, 'haus:A', 'german')).toBe(true);
    await setLang(de, 'de-AT');
    expect(await matches(later.id, 'haus', 'german')).toBe(true);
    // And back: English again.
    await setLang(de, 'en');
    expect(await matches(house!.id, 'haus', 'german')).toBe(false);
    expect((await lexemes(house!.id)).has('häuser')).toBe(true);
  });

  it('a tag rename re-indexes the posts that carry it, and only those', async () => {
    const tagged = await newPost(en, { title: 'Birds', tags: ['Pelicans'] });
    const alsoTagged = await newPost(en, { title: 'More birds', tags: ['Gulls', 'Pelicans'] });
    const untagged = await newPost(en, { title: 'Pelicans in the title', tags: ['Gulls'] });
    const untaggedBefore = await vectorText(untagged.id);
    const tagId = tagged.tags[0]!.id;

    await api(en, 'PATCH', `/tags/${tagId}`, { name: 'Flamingos' });
    for (const p of [tagged, alsoTagged]) {
      const lex = await lexemes(p.id);
      expect(lex.get('flamingo')).toEqual(new Set(['B']));
      expect(lex.has('pelican')).toBe(false);
    }
    expect((await lexemes(alsoTagged.id)).get('gull')).toEqual(new Set(['B']));
    expect(await vectorText(untagged.id)).toBe(untaggedBefore);
    // A slug-only change leaves the documents as they are.
    const before = await vectorText(tagged.id);
    await api(en, 'PATCH', `/tags/${tagId}`, { slug: 'pink-birds' });
    expect(await vectorText(tagged.id)).toBe(before);
  });

  it('internal tags (#name) are not indexed; made public they are, made internal again they are not', async () => {
    const post = await newPost(en, { title: 'Plans', tags: ['#secretplans', 'Visible'] });
    const internal = post.tags.find((x) => x.name === '#secretplans')!;
    expect(await matches(post.id, 'secretplans')).toBe(false);
    expect(await matches(post.id, 'visible:B')).toBe(true);
    expect([...(await lexemes(post.id)).keys()].some((w) => w.includes('secret'))).toBe(false);

    await api(en, 'PATCH', `/tags/${internal.id}`, { visibility: 'public' });
    expect(await matches(post.id, 'secretplans:B')).toBe(true);
    await api(en, 'PATCH', `/tags/${internal.id}`, { visibility: 'internal' });
    expect(await matches(post.id, 'secretplans')).toBe(false);
    // An internal tag given to a post later is not indexed either.
    const patched = await api(en, 'PATCH', `/posts/${post.id}`, { tags: ['Visible', '#hiddenword'], version: 1 });
    expect(patched.tags).toHaveLength(2);
    expect(await matches(post.id, 'hiddenword')).toBe(false);
  });

  it('taking a tag off a post, or deleting the tag, removes its term; adding one adds it', async () => {
    const a = await newPost(en, { title: 'Coast', tags: ['Lighthouse', 'Harbour'] });
    const b = await newPost(en, { title: 'Port', tags: ['Harbour'] });
    expect(await matches(a.id, 'lighthouse:B & harbour:B')).toBe(true);

    await api(en, 'PATCH', `/posts/${a.id}`, { tags: ['Harbour', 'Beacon'], version: 1 });
    expect(await matches(a.id, 'lighthouse')).toBe(false);
    expect(await matches(a.id, 'harbour:B & beacon:B')).toBe(true);

    const harbour = b.tags[0]!.id;
    await api(en, 'DELETE', `/tags/${harbour}`);
    expect(await matches(a.id, 'harbour')).toBe(false);
    expect(await matches(b.id, 'harbour')).toBe(false);
    expect(await matches(a.id, 'beacon:B')).toBe(true);
    expect(await matches(b.id, 'port:A')).toBe(true);

    await api(en, 'PATCH', `/posts/${a.id}`, { tags: [], version: 2 });
    expect(await matches(a.id, 'beacon')).toBe(false);
    expect(await matches(a.id, 'coast:A')).toBe(true);
  });

  it('editing the title, excerpt or body, or restoring a revision, re-indexes the post', async () => {
    const post = await newPost(en, { title: 'Antelope', customExcerpt: 'Buffalo', body: 'Cheetah' });
    await api(en, 'PATCH', `/posts/${post.id}`, { title: 'Dolphin', version: 1 });
    expect(await matches(post.id, 'antelope')).toBe(false);
    expect(await matches(post.id, 'dolphin:A & buffalo:B & cheetah:C')).toBe(true);
    await api(en, 'PATCH', `/posts/${post.id}`, { customExcerpt: null, body: 'Elephant', version: 2 });
    expect(await matches(post.id, 'buffalo | cheetah')).toBe(false);
    expect(await matches(post.id, 'dolphin:A & elephant:C')).toBe(true);

    const revisions = await app.inject({ url: `/api/v1/posts/${post.id}/revisions`, headers: en.as(en.owner) });
    const first = (revisions.json().data as Array<{ id: string; reason: string }>).at(-1)!;
    expect(first.reason).toBe('create');
    await api(en, 'POST', `/posts/${post.id}/revisions/${first.id}/restore`, { version: 3 });
    expect(await matches(post.id, 'antelope:A & buffalo:B & cheetah:C')).toBe(true);
    expect(await matches(post.id, 'dolphin | elephant')).toBe(false);
  });

  it('every stored document equals a fresh computation from its post, its tags and its tenant language', async () => {
    // Runs last: every post the tests above wrote, after all their renames, deletions and switches.
    const { rows } = await tdb.db.query(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE search_vector IS NULL)::int AS missing,
              count(*) FILTER (WHERE search_vector IS DISTINCT FROM
                quire_post_search_document(tenant_id, id, title, excerpt, plaintext))::int AS stale
         FROM posts`,
    );
    expect(rows[0]?.total).toBeGreaterThan(15);
    expect(rows[0]).toMatchObject({ missing: 0, stale: 0 });
  });
});
