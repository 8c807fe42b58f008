import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from '../../platform/cache/index.js';
import type { Database, TenantContext } from '../../platform/db/index.js';
import { migratePglite } from '../../platform/db/migrate.js';
import { createPgliteDatabase } from '../../platform/db/pglite.js';
import { tenants, users } from '../../platform/db/schema.js';
import { createContentVersions } from '../delivery/versions.js';
import { createOutbox } from '../jobs/outbox.js';
import { createTagsService } from '../tags/service.js';
import { createPostsService, type PostsService } from './service.js';

// The service on its own (no HTTP), on an in-memory PGlite.
describe('posts service', () => {
  let db: Database & { client: import('@electric-sql/pglite').PGlite };
  let posts: PostsService;
  let owner: TenantContext;
  let viewer: TenantContext;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migratePglite(db.client);
    const [t] = await db.system.insert(tenants).values({ name: 'T', slug: 'svc-t' }).returning();
    const [o, v] = await db.system
      .insert(users)
      .values([
        { email: 'o@x.test', name: 'O', passwordHash: 'x' },
        { email: 'v@x.test', name: 'V', passwordHash: 'x' },
      ])
      .returning();
    await db.client.query(
      `insert into memberships (tenant_id, user_id, role) values ($1, $2, 'owner'), ($1, $3, 'viewer')`,
      [t!.id, o!.id, v!.id],
    );
    owner = { tenantId: t!.id, userId: o!.id };
    viewer = { tenantId: t!.id, userId: v!.id };
    const outbox = createOutbox();
    const versions = createContentVersions(createCache({ l1MaxEntries: 100, l1TtlSeconds: 30, defaultTtlSeconds: 60 }));
    posts = createPostsService({
      db,
      outbox,
      versions,
      tags: createTagsService({ db, outbox, versions }),
      revisionsPerPost: 5,
    });
  });
  afterAll(() => db?.close());

  it('derives slugs from titles and numbers repeats', async () => {
    const a = await posts.create(owner, { title: 'Ünïcode & Friends!', body: '' });
    const b = await posts.create(owner, { title: 'Ünïcode & Friends!', body: '' });
    const c = await posts.create(owner, { title: '!!!', body: '' });
    expect(a.slug).toBe('unicode-and-friends');
    expect(b.slug).toBe('unicode-and-friends-2');
    expect(c.slug).toBe('post');
  });

  it('publishes once, keeps publishedAt across republish, clears it on unpublish', async () => {
    const p = await posts.create(owner, { title: 'Life cycle', body: 'x' });
    const pub = await posts.publish(owner, p.id);
    expect(pub.status).toBe('published');
    expect(pub.publishedAt).not.toBeNull();
    expect(pub.version).toBe(p.version + 1);
    const again = await posts.publish(owner, p.id);
    expect(again).toEqual(pub);
    const draft = await posts.unpublish(owner, p.id);
    expect(draft).toMatchObject({ status: 'draft', publishedAt: null });
  });

  it('rejects a forged cursor', async () => {
    for (const cursor of [
      'nope',
      Buffer.from('["x","y"]').toString('base64url'),
      Buffer.from('{}').toString('base64url'),
    ]) {
      await expect(posts.list(owner, { limit: 5, cursor, sort: 'created_at' })).rejects.toMatchObject({
        statusCode: 400,
        code: 'invalid_cursor',
      });
    }
  });

  it('forbids writes to a viewer and hides the tenant from strangers', async () => {
    await expect(posts.create(viewer, { title: 'No', body: '' })).rejects.toMatchObject({ statusCode: 403 });
    const stranger = { tenantId: owner.tenantId, userId: '00000000-0000-4000-8000-000000000000' };
    await expect(posts.list(stranger, { limit: 5, sort: 'created_at' })).rejects.toMatchObject({ statusCode: 404 });
  });
});
