import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/platform/db/index.js';
import type { MemberRole } from '../../src/platform/db/schema.js';
import { createTenant, createUser, PASSWORD, type TestTenant, type TestUser } from '../helpers/factories.js';
import { sessionIdOf } from '../helpers/jwt.js';
import type { Operation } from './spec.js';
import type { MarkerKind } from './tally.js';

/**
 * Two tenants built through the API: A (the attacker's side: a member per role, its keys) and B
 * (the target: posts in every status, pages, tags, members, an invitation, a content key, an
 * export…), with unique marker strings planted in everything B owns, so that any response can be
 * searched for B's data. Slugs and ids carry no marker (they go into URLs).
 */

export const ROLES: MemberRole[] = ['owner', 'admin', 'editor', 'author', 'viewer'];
export const API_KEY_SCOPES = ['content:read', 'content:write', 'members:read', 'admin'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
export const BASE_HOST = 'blog.test';

const hex = (n = 4) => randomBytes(n).toString('hex');

export interface Marker {
  value: string;
  kind: MarkerKind;
}

export interface PostRef {
  id: string;
  slug: string;
  version: number;
}

export interface TenantWorld {
  name: 'A' | 'B';
  tenant: TestTenant;
  users: Record<MemberRole, TestUser>;
  /** A member no test acts as: the target of member and author routes. */
  member: TestUser;
  posts: { draft: PostRef; published: PostRef; archived: PostRef; scheduled: PostRef };
  pages: { draft: PostRef; published: PostRef };
  revisions: { post: string; page: string };
  tags: { public: { id: string; slug: string }; internal: { id: string } };
  authorSlug: string;
  /** A private marker in the draft's body: what a cross-tenant search looks for. */
  secret: string;
  invitationId: string;
  contentKey: { id: string; key: string };
  exportJobId: string;
  /** An email domain claimed for SSO, when the feature exists. */
  domain?: string;
  /** Admin API keys by scope, when the feature exists. */
  apiKeys: Partial<Record<ApiKeyScope, { id: string; key: string }>>;
  /** A session of the owner's that nothing else uses: the target of DELETE /auth/sessions/:id. */
  spareSessionId: string;
}

export interface ApiKeysStatus {
  available: boolean;
  /** Why not, in a sentence a reader can act on. */
  reason?: string;
}

export class WorldBuilder {
  readonly markers: Marker[] = [];
  constructor(private readonly app: FastifyInstance) {}

  mark(kind: MarkerKind): string {
    const value = `zq${kind[0]!.toLowerCase()}${kind.endsWith('priv') ? 'p' : 'u'}${hex(5)}`;
    this.markers.push({ value, kind });
    return value;
  }

  private async call(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    headers: Record<string, string>,
    payload?: object,
    expected: number[] = [200, 201, 202, 204],
  ) {
    const res = await this.app.inject({ method, url, headers, ...(payload && { payload }) });
    if (!expected.includes(res.statusCode)) {
      throw new Error(`world setup: ${method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`);
    }
    return res;
  }

  async member(t: TestTenant, role: MemberRole, email: string): Promise<TestUser> {
    const user = await createUser(this.app, { email, name: `${role} ${hex(2)}` });
    await this.call('POST', `/api/v1/tenants/${t.id}/members`, t.owner.auth, { email: user.email, role });
    return user;
  }

  private async post(
    t: TestTenant,
    kind: 'posts' | 'pages',
    body: Record<string, unknown>,
    then?: 'publish' | 'archive' | 'schedule',
  ): Promise<PostRef> {
    const h = t.as(t.owner);
    const created = (await this.call('POST', `/api/v1/${kind}`, h, body)).json().data;
    let version = created.version as number;
    if (then) {
      const payload = then === 'schedule' ? { publishAt: new Date(Date.now() + 86_400_000 * 60).toISOString() } : {};
      const moved = await this.call('POST', `/api/v1/${kind}/${created.id}/${then}`, h, payload);
      version = moved.json().data.version;
    }
    return { id: created.id, slug: created.slug, version };
  }

  async tenant(name: 'A' | 'B', opts: { exports: boolean }): Promise<TenantWorld> {
    const p = name === 'A' ? 'A' : 'B';
    const priv = () => this.mark(`${p}-priv`);
    const pub = () => this.mark(`${p}-pub`);
    const owner = await createUser(this.app, { email: `${priv()}@example.com`, name: `${p} owner` });
    const tenant = await createTenant(this.app, owner);
    const users = { owner } as Record<MemberRole, TestUser>;
    for (const role of ROLES.slice(1)) users[role] = await this.member(tenant, role, `${priv()}@example.com`);
    const member = await this.member(tenant, 'author', `${priv()}@example.com`);
    const h = tenant.as(owner);

    await this.call('PUT', `/api/v1/tenants/${tenant.id}/settings`, owner.auth, {
      title: `Site ${pub()}`,
      description: `About ${pub()}`,
    });
    const publicTagName = `Tag ${pub()}`;
    const internalTagName = `#${priv()}`;
    const secret = priv();
    const draft = await this.post(tenant, 'posts', {
      title: `Draft ${priv()}`,
      body: `Draft body ${secret}`,
      customExcerpt: `Draft excerpt ${priv()}`,
      slug: `${p.toLowerCase()}-draft-${hex()}`,
      tags: [internalTagName, publicTagName],
    });
    const published = await this.post(
      tenant,
      'posts',
      {
        title: `Published ${pub()}`,
        body: `Published body ${pub()}`,
        slug: `${p.toLowerCase()}-pub-${hex()}`,
        tags: [publicTagName],
      },
      'publish',
    );
    const archived = await this.post(
      tenant,
      'posts',
      { title: `Archived ${priv()}`, body: `Archived body ${priv()}`, slug: `${p.toLowerCase()}-arch-${hex()}` },
      'archive',
    );
    const scheduled = await this.post(
      tenant,
      'posts',
      { title: `Scheduled ${priv()}`, body: `Scheduled body ${priv()}`, slug: `${p.toLowerCase()}-sched-${hex()}` },
      'schedule',
    );
    const pageDraft = await this.post(tenant, 'pages', {
      title: `Page draft ${priv()}`,
      body: `Page draft body ${priv()}`,
      slug: `${p.toLowerCase()}-pdraft-${hex()}`,
    });
    const pagePublished = await this.post(
      tenant,
      'pages',
      { title: `Page ${pub()}`, body: `Page body ${pub()}`, slug: `${p.toLowerCase()}-page-${hex()}` },
      'publish',
    );
    const tagList = (await this.call('GET', '/api/v1/tags', h)).json().data as Array<{ id: string; name: string }>;
    const publicTag = tagList.find((t) => t.name === publicTagName)!;
    const internalTag = tagList.find((t) => t.name === internalTagName)!;
    // A slug without the marker (slugs go into URLs).
    const tagSlug = `${p.toLowerCase()}-tag-${hex()}`;
    await this.call('PATCH', `/api/v1/tags/${publicTag.id}`, h, { slug: tagSlug });
    const revisionOf = async (kind: string, id: string) =>
      ((await this.call('GET', `/api/v1/${kind}/${id}/revisions`, h)).json().data as Array<{ id: string }>)[0]!.id;
    const authorSlug = `${p.toLowerCase()}-author-${hex()}`;
    await this.call('PATCH', `/api/v1/authors/${owner.id}`, h, { slug: authorSlug, bio: `Bio ${pub()}` });
    const invite = await this.call('POST', `/api/v1/tenants/${tenant.id}/members`, owner.auth, {
      email: `${priv()}@example.com`,
      role: 'editor',
    });
    const ck = (await this.call('POST', '/api/v1/content-keys', h, { name: `Key ${priv()}` })).json().data;
    this.markers.push({ value: ck.key, kind: `${p}-priv` });

    let exportJobId = randomUUID();
    if (opts.exports) {
      exportJobId = (await this.call('POST', '/api/v1/exports', h)).json().data.jobId;
      for (let i = 0; ; i++) {
        const job = (await this.call('GET', `/api/v1/jobs/${exportJobId}`, h)).json().data;
        if (job.state === 'completed') break;
        if (job.state === 'failed' || i > 1200) throw new Error(`world setup: export ${job.state}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const claim = await this.app.inject({
      method: 'POST',
      url: `/api/v1/tenants/${tenant.id}/sso/domains`,
      headers: owner.auth,
      payload: { domain: `${p.toLowerCase()}-${hex()}.example.com` },
    });
    const domain = claim.statusCode === 201 ? (claim.json().data.domain as string) : undefined;
    const spare = await this.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: owner.email, password: PASSWORD },
    });
    if (spare.statusCode !== 200) throw new Error(`world ${p}: sign-in failed: ${spare.statusCode} ${spare.body}`);
    const spareSessionId = sessionIdOf(spare.json().data.accessToken);
    return {
      spareSessionId,
      name,
      tenant,
      domain,
      users,
      member,
      posts: { draft, published, archived, scheduled },
      pages: { draft: pageDraft, published: pagePublished },
      revisions: { post: await revisionOf('posts', draft.id), page: await revisionOf('pages', pageDraft.id) },
      tags: { public: { id: publicTag.id, slug: tagSlug }, internal: { id: internalTag.id } },
      authorSlug,
      secret,
      invitationId: invite.json().data.invitationId,
      contentKey: { id: ck.id, key: ck.key },
      exportJobId,
      apiKeys: {},
    };
  }

  /**
   * Admin API keys (the contract: POST /api/v1/tenants/:id/api-keys {name, scopes, expiresAt?}
   * → 201 { data: { id, key, … } }). Fills `w.apiKeys` when the route exists.
   */
  async apiKeys(w: TenantWorld, scopes: readonly ApiKeyScope[]): Promise<ApiKeysStatus> {
    for (const scope of scopes) {
      const res = await this.app.inject({
        method: 'POST',
        url: `/api/v1/tenants/${w.tenant.id}/api-keys`,
        headers: w.tenant.owner.auth,
        payload: { name: `Key ${scope} ${this.mark(`${w.name}-priv`)}`, scopes: [scope] },
      });
      if (res.statusCode === 404 && /route_not_found/.test(res.body)) {
        return {
          available: false,
          reason:
            'admin API keys are not in the app yet: POST /api/v1/tenants/:id/api-keys answered 404 route_not_found, so the API-key principals could not attack (integrate the feature and these tests run)',
        };
      }
      if (res.statusCode !== 201) {
        return {
          available: false,
          reason: `creating an admin API key (scope ${scope}) failed: ${res.statusCode} ${res.body.slice(0, 300)}`,
        };
      }
      const d = res.json().data as { id: string; key: string };
      this.markers.push({ value: d.key, kind: `${w.name}-priv` });
      w.apiKeys[scope] = { id: d.id, key: d.key };
    }
    return { available: true };
  }
}

/**
 * A digest of everything a tenant owns, straight from the database as the owner role (RLS
 * does not hide anything here): every table with a tenant_id, the tenant's row, and its
 * members' user rows. The outbox is counted only (the relay marks rows as it dispatches them).
 */
export async function snapshotter(db: Database) {
  const { rows } = await db.query(
    `select table_name from information_schema.columns
      where table_schema = 'public' and column_name = 'tenant_id' order by table_name`,
  );
  const tables = rows.map((r) => String(r.table_name)).filter((t) => /^[a-z_0-9]+$/.test(t));
  const parts = tables.map((t) =>
    t === 'outbox'
      ? `select '${t}' as t, count(*)::text as h from "${t}" x where x.tenant_id = $1`
      : `select '${t}' as t, count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from "${t}" x where x.tenant_id = $1`,
  );
  parts.push(`select 'tenants' as t, md5(coalesce(string_agg(x::text, '|'), '')) as h from tenants x where x.id = $1`);
  parts.push(
    `select 'users' as t, md5(coalesce(string_agg(x::text, '|' order by x.id), '')) as h from users x
      where x.id in (select user_id from memberships m where m.tenant_id = $1)`,
  );
  const sql = `select string_agg(t || '=' || h, ',' order by t) as digest from (${parts.join(' union all ')}) s`;
  return {
    tables,
    async digest(tenantId: string): Promise<string> {
      const r = await db.query(sql, [tenantId]);
      return String(r.rows[0]?.digest ?? '');
    },
    /** Per table, to say what changed. */
    async detail(tenantId: string): Promise<Record<string, string>> {
      const d = await this.digest(tenantId);
      return Object.fromEntries(d.split(',').map((kv) => kv.split('=') as [string, string]));
    },
  };
}

/** The path parameters of an operation filled with `w`'s resources (several bindings when there are choices). */
export function bindings(op: Operation, w: TenantWorld, unresolved: Set<string>): Array<Record<string, string>> {
  if (!op.pathParams.length) return [{}];
  const seg = op.path.split('/')[3] ?? '';
  const content = /\/content\/(\w+)\//.exec(op.path)?.[1];
  const kind = seg === 'pages' || content === 'pages' ? 'pages' : 'posts';
  const choices = (name: string): string[] | undefined => {
    if (name === 'tenantSlug') return [w.tenant.slug];
    if (name === 'apiVersion') return ['v5'];
    if (op.surface === 'content') {
      if (content === 'posts') return name === 'id' ? [w.posts.published.id] : [w.posts.published.slug];
      if (content === 'pages') return name === 'id' ? [w.pages.published.id] : [w.pages.published.slug];
      if (content === 'tags') return name === 'id' ? [w.tags.public.id] : [w.tags.public.slug];
      if (content === 'authors') return name === 'id' ? [w.tenant.owner.id] : [w.authorSlug];
      return undefined;
    }
    if (op.path.includes('/api-keys')) {
      if (name === 'id' && op.path.startsWith('/api/v1/tenants/{id}')) return [w.tenant.id];
      const k = Object.values(w.apiKeys)[0];
      return k ? [k.id] : undefined;
    }
    if (name === 'provider') return ['google'];
    if (name === 'sessionId' && op.path.startsWith('/api/v1/auth/sessions/')) return [w.spareSessionId];
    if (op.surface === 'tenant-path') {
      if (name === 'id') return [w.tenant.id];
      if (name === 'domain') return w.domain ? [w.domain] : undefined;
      if (name === 'userId') return w.name === 'B' ? [w.users.editor.id, w.tenant.owner.id] : [w.member.id];
      if (name === 'invitationId') return [w.invitationId];
      return undefined;
    }
    switch (seg) {
      case 'posts':
      case 'pages': {
        const set = kind === 'pages' ? w.pages : w.posts;
        if (name === 'id') return [set.draft.id, set.published.id];
        if (name === 'idOrSlug') return [set.draft.id, set.draft.slug, set.published.id];
        if (name === 'revisionId') return [kind === 'pages' ? w.revisions.page : w.revisions.post];
        return undefined;
      }
      case 'tags':
        return name === 'id' ? [w.tags.public.id, w.tags.internal.id] : undefined;
      case 'authors':
        return name === 'userId'
          ? w.name === 'B'
            ? [w.tenant.owner.id, w.users.viewer.id]
            : [w.member.id]
          : undefined;
      case 'content-keys':
        return name === 'id' ? [w.contentKey.id] : undefined;
      case 'jobs':
      case 'exports':
        return name === 'id' || name === 'jobId' ? [w.exportJobId] : undefined;
      case 'queues':
        return name === 'name' ? ['export'] : undefined;
      default:
        return undefined;
    }
  };
  // Revisions belong to one post: bind the post to the revision's owner.
  if (op.pathParams.includes('revisionId')) {
    const set = kind === 'pages' ? w.pages : w.posts;
    return [{ id: set.draft.id, revisionId: kind === 'pages' ? w.revisions.page : w.revisions.post }];
  }
  let out: Array<Record<string, string>> = [{}];
  for (const name of op.pathParams) {
    let values = choices(name);
    if (!values?.length) {
      unresolved.add(`${op.key} {${name}}`);
      values = [randomUUID()];
    }
    out = out.flatMap((b) => values.map((v) => ({ ...b, [name]: v })));
  }
  return out.slice(0, 4);
}
