import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { and, asc, eq, gt, isNotNull, isNull, type SQL, sql } from 'drizzle-orm';
import { resealAll, type Sealer } from '../../platform/crypto/sealer.js';
import type { Database, Executor, TenantContext } from '../../platform/db/index.js';
import {
  type MemberRole,
  memberships,
  oidcStates,
  recoveryCodes,
  refreshTokens,
  tenantDomains,
  tenantSso,
  tenants,
  userIdentities,
  users,
} from '../../platform/db/schema.js';
import { AppError, badRequest, conflict, isUniqueViolation, notFound, unprocessable } from '../../shared/errors.js';
import { inTenant } from '../../shared/tenant-scope.js';
import type { AuditLog } from '../audit/service.js';
import { acceptInvitations } from '../auth/repository.js';
import type { AuthService } from '../auth/service.js';
import { normalizeEmail } from '../auth/service.js';
import { hashToken } from '../auth/tokens.js';
import type { ExternalIdentity, OidcClient, ProviderConfig } from './oidc.js';

const STATE_TTL_MS = 10 * 60_000;
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
export const TXT_PREFIX = '_quire-verification';

export interface PlatformProvider {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  type: 'oidc' | 'github';
}

const tenantKey = (tenantId: string) => `tenant:${tenantId}`;
const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1).toLowerCase();
const secretAad = (tenantId: string) => `sso-client-secret:${tenantId}`;

/**
 * Sign-in through identity providers, and each organization's own:
 * - Platform providers (Google, GitHub, any OIDC issuer) from the configuration.
 * - An organization's OIDC issuer, set by its owner, with email domains it proves by DNS TXT
 *   record. Only emails of its verified domains sign in through it; with enforcement on, people
 *   of those domains sign in only through it (no password, no platform provider).
 * Accounts link by verified email. An existing account whose email was never verified is taken
 * over by the provider's verified owner: its password and sessions are dropped (else whoever
 * registered the address first would share the account).
 */
export function createSsoService(deps: {
  db: Database;
  oidc: OidcClient;
  sealer: Sealer;
  audit: AuditLog;
  auth: AuthService;
  providers: PlatformProvider[];
  dnsServers?: string[];
}) {
  const { db, oidc, sealer, audit, auth } = deps;
  const resolver = new Resolver({ timeout: 3_000, tries: 2 });
  if (deps.dnsServers) resolver.setServers(deps.dnsServers);

  async function providerFor(key: string): Promise<ProviderConfig> {
    if (key.startsWith('tenant:')) {
      const tenantId = key.slice('tenant:'.length);
      const [row] = await db.system.select().from(tenantSso).where(eq(tenantSso.tenantId, tenantId));
      if (!row) throw notFound('Single sign-on');
      return {
        key,
        issuer: row.issuer,
        clientId: row.clientId,
        clientSecret: sealer.open(row.clientSecret, secretAad(tenantId)),
      };
    }
    const p = deps.providers.find((x) => x.id === key);
    if (!p) throw notFound('Identity provider');
    return { key, issuer: p.issuer, clientId: p.clientId, clientSecret: p.clientSecret, type: p.type };
  }

  /** The organization (if any) whose enforced SSO covers this email's domain. */
  async function enforcedFor(exec: Executor, email: string) {
    const [row] = await exec
      .select({ tenantId: tenants.id, slug: tenants.slug })
      .from(tenantDomains)
      .innerJoin(tenantSso, eq(tenantSso.tenantId, tenantDomains.tenantId))
      .innerJoin(tenants, eq(tenants.id, tenantDomains.tenantId))
      .where(
        and(
          eq(tenantDomains.domain, domainOf(email)),
          isNotNull(tenantDomains.verifiedAt),
          eq(tenantSso.enforced, true),
        ),
      )
      .limit(1);
    return row;
  }

  /**
   * Enforcement covers sessions already open too: for people of the organization's verified
   * domains (or of `domain` alone), every refresh token that did not come from its own provider is
   * revoked and their access tokens refused, so they sign in again through it.
   * Owners with a second factor keep theirs (see `exemptOwner`).
   */
  async function endSessionsOutsideSso(tenantId: string, actorUserId: string, domain?: string) {
    const inDomains = sql`${refreshTokens.userId} in (
      select u.id from users u join tenant_domains d on d.domain = substring(u.email from '@([^@]*)$')
      where d.tenant_id = ${tenantId} and d.verified_at is not null
        ${domain ? sql`and d.domain = ${domain}` : sql``})`;
    // coalesce: a session bound to no tenant has a null tenant_id, and `not null` would keep it.
    const throughSso = sql`coalesce(${refreshTokens.tenantId} = ${tenantId} and 'sso' = any(${refreshTokens.amr}), false)`;
    const ended = await db.system
      .update(refreshTokens)
      .set({ revokedAt: sql`now()` })
      .where(
        and(
          isNull(refreshTokens.revokedAt),
          inDomains,
          sql`not ${throughSso}`,
          sql`not ${exemptOwner(sql`${refreshTokens.userId}`, tenantId)}`,
        ),
      )
      .returning({ userId: refreshTokens.userId });
    const people = [...new Set(ended.map((r) => r.userId))];
    await auth.forgetSessions(...people);
    if (people.length > 0) {
      await db.transaction((tx) =>
        audit.record(tx, tenantId, {
          action: 'sessions.revoked',
          actorUserId,
          details: {
            reason: 'sso_enforced',
            people: people.length,
            sessions: ended.length,
            ...(domain ? { domain } : {}),
          },
        }),
      );
    }
  }

  /**
   * Break glass: an owner of the enforcing organization with a second factor on is exempt from
   * its enforcement (password and TOTP still work for them), so a broken or lost identity
   * provider cannot lock the organization out of its own settings.
   */
  const exemptOwner = (userId: SQL | string, tenantId: string) => sql`exists (
    select 1 from memberships m join users o on o.id = m.user_id
    where m.tenant_id = ${tenantId} and m.user_id = ${userId} and m.role = 'owner' and o.totp_enabled_at is not null)`;

  async function isExemptOwner(exec: Executor, userId: string, tenantId: string): Promise<boolean> {
    const result = (await exec.execute(sql`select ${exemptOwner(userId, tenantId)} as exempt`)) as unknown as {
      rows: Array<{ exempt: boolean }>;
    };
    return Boolean(result.rows[0]?.exempt);
  }

  /** Finds or creates the account for a provider identity, linking by verified email. */
  async function accountFor(provider: string, id: ExternalIdentity & { email: string }) {
    const email = normalizeEmail(id.email);
    return db.transaction(async (tx) => {
      const [linked] = await tx
        .update(userIdentities)
        .set({ lastLoginAt: sql`now()`, email })
        .where(and(eq(userIdentities.provider, provider), eq(userIdentities.subject, id.subject)))
        .returning({ userId: userIdentities.userId });
      if (linked) return { userId: linked.userId, linkedNow: false };
      let [user] = await tx.select().from(users).where(eq(users.email, email)).for('update');
      if (user && !user.emailVerifiedAt) {
        // Unproven until now: whoever set its password did not show they own the address.
        // Everything they set up goes: password, second factor, sessions.
        await tx
          .update(users)
          .set({
            passwordHash: null,
            totpSecret: null,
            totpEnabledAt: null,
            totpLastStep: null,
            emailVerifiedAt: sql`now()`,
            updatedAt: sql`now()`,
          })
          .where(eq(users.id, user.id));
        await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, user.id));
        await tx.update(refreshTokens).set({ revokedAt: sql`now()` }).where(eq(refreshTokens.userId, user.id));
      }
      if (!user) {
        [user] = await tx
          .insert(users)
          .values({ email, name: id.name?.trim().slice(0, 100) || email.split('@')[0]!, emailVerifiedAt: new Date() })
          .returning();
        // Invitations waiting for this address become memberships, as at registration.
        await acceptInvitations(tx, user!.id, email);
      }
      await tx
        .insert(userIdentities)
        .values({ provider, subject: id.subject, userId: user!.id, email, lastLoginAt: new Date() });
      return { userId: user!.id, linkedNow: true };
    });
  }

  return {
    redirectUri: oidc.redirectUri,

    /**
     * For refresh (the auth service's refresh policy): a session of someone whose domain an
     * organization enforces single sign-on for lives on only if it came through that
     * organization's provider; otherwise `sso_required`, as at sign-in.
     */
    async refusesSession(s: { userId: string; tenantId: string | null; amr: string[] }, exec: Executor) {
      const [account] = await exec.select({ email: users.email }).from(users).where(eq(users.id, s.userId));
      const enforced = account ? await enforcedFor(exec, account.email) : undefined;
      if (!enforced || (s.tenantId === enforced.tenantId && s.amr.includes('sso'))) return null;
      if (await isExemptOwner(exec, s.userId, enforced.tenantId)) return null;
      return ssoRequired(enforced.slug);
    },

    /** Platform providers people can sign in with (no secrets). */
    listProviders: () => deps.providers.map((p) => ({ id: p.id, name: p.name })),

    /** Organization SSO only for people of its verified domains; with enforcement, only through it. */
    async assertPasswordAllowed(email: string): Promise<void> {
      const normalized = normalizeEmail(email);
      const enforced = await enforcedFor(db.system, normalized);
      if (!enforced) return;
      const [account] = await db.system.select({ id: users.id }).from(users).where(eq(users.email, normalized));
      if (account && (await isExemptOwner(db.system, account.id, enforced.tenantId))) return;
      throw ssoRequired(enforced.slug);
    },

    /** Starts a sign-in: where to send the browser, and the state to bind to it (a cookie). */
    async authorize(input: { provider: string } | { tenantSlug: string }, mode: 'bearer' | 'cookie') {
      let key: string;
      if ('provider' in input) key = input.provider;
      else {
        const [t] = await db.system.select({ id: tenants.id }).from(tenants).where(eq(tenants.slug, input.tenantSlug));
        if (!t) throw notFound('Single sign-on');
        key = tenantKey(t.id);
      }
      const provider = await providerFor(key);
      const started = await oidc.start(provider);
      await db.system.insert(oidcStates).values({
        stateHash: hashToken(started.state),
        provider: key,
        nonce: started.nonce,
        codeVerifier: started.codeVerifier,
        mode,
        expiresAt: new Date(Date.now() + STATE_TTL_MS),
      });
      return { url: started.url.href, state: started.state };
    },

    /**
     * The provider's redirect back. `browserState` is the state cookie set at authorize: a
     * callback opened in another browser (login CSRF) does not match it.
     */
    async callback(callbackUrl: URL, browserState: string | undefined) {
      const state = callbackUrl.searchParams.get('state') ?? '';
      const [pending] = await db.system
        .delete(oidcStates)
        .where(and(eq(oidcStates.stateHash, hashToken(state)), gt(oidcStates.expiresAt, sql`now()`)))
        .returning();
      if (!pending || !browserState || browserState !== state) {
        throw badRequest('oidc_state_invalid', 'This sign-in was not started here, or has expired; start again');
      }
      const mode = pending.mode === 'cookie' ? ('cookie' as const) : ('bearer' as const);
      if (callbackUrl.searchParams.has('error')) {
        throw new AppError(401, 'oidc_failed', 'The identity provider did not sign you in');
      }
      const provider = await providerFor(pending.provider);
      const identity = await oidc.finish(provider, callbackUrl, {
        state,
        nonce: pending.nonce,
        codeVerifier: pending.codeVerifier,
      });
      if (!identity.email || !identity.emailVerified) {
        throw new AppError(403, 'oidc_email_unverified', 'The identity provider did not vouch for an email address');
      }
      const email = normalizeEmail(identity.email);
      const tenantId = pending.provider.startsWith('tenant:') ? pending.provider.slice('tenant:'.length) : null;
      if (tenantId) {
        const [domain] = await db.system
          .select({ domain: tenantDomains.domain })
          .from(tenantDomains)
          .where(
            and(
              eq(tenantDomains.tenantId, tenantId),
              eq(tenantDomains.domain, domainOf(email)),
              isNotNull(tenantDomains.verifiedAt),
            ),
          );
        if (!domain) {
          await db.transaction(async (tx) =>
            audit.record(tx, tenantId, {
              action: 'sso.login_refused',
              actorUserId: null,
              details: { email, reason: 'domain_not_verified' },
            }),
          );
          throw new AppError(
            403,
            'sso_domain_mismatch',
            "This organization's sign-in is for email addresses of its verified domains",
          );
        }
      } else {
        const enforced = await enforcedFor(db.system, email);
        if (enforced) throw ssoRequired(enforced.slug);
      }
      const { userId, linkedNow } = await accountFor(pending.provider, { ...identity, email });
      // A takeover ended the squatter's sessions: at once (harmless otherwise).
      if (linkedNow) await auth.forgetSessions(userId);
      if (!tenantId) {
        // The account's own address counts too: a provider that now asserts another address
        // must not open an account its organization requires to use single sign-on.
        const [account] = await db.system.select({ email: users.email }).from(users).where(eq(users.id, userId));
        const enforced = account && account.email !== email ? await enforcedFor(db.system, account.email) : undefined;
        if (enforced) throw ssoRequired(enforced.slug);
      }
      let sessionTenant: string | null = null;
      if (tenantId) {
        const [sso] = await db.system
          .select({ defaultRole: tenantSso.defaultRole })
          .from(tenantSso)
          .where(eq(tenantSso.tenantId, tenantId));
        const [member] = await db.system
          .select({ role: memberships.role })
          .from(memberships)
          .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)));
        if (!member && sso?.defaultRole) {
          await db.transaction(async (tx) => {
            const [joined] = await tx
              .insert(memberships)
              .values({ tenantId, userId, role: sso.defaultRole! })
              .onConflictDoNothing()
              .returning({ role: memberships.role });
            if (joined) {
              await audit.record(tx, tenantId, {
                action: 'member.provisioned',
                actorUserId: userId,
                target: { type: 'user', id: userId },
                details: { role: joined.role, via: 'sso' },
              });
            }
          });
        }
        if (member || sso?.defaultRole) sessionTenant = tenantId;
        await auth.forgetUsers(userId);
      }
      if (linkedNow) {
        await audit.recordForUser(userId, {
          action: 'identity.linked',
          actorUserId: userId,
          details: { provider: pending.provider },
        });
      }
      return { mode, session: await auth.startSession(userId, sessionTenant, ['sso']) };
    },

    // An organization's configuration (owners).

    async getConfig(ctx: TenantContext) {
      return inTenant(db, ctx, 'tenant:security', async (tx) => {
        const [row] = await tx.select().from(tenantSso).where(eq(tenantSso.tenantId, ctx.tenantId));
        const domains = await tx.select().from(tenantDomains).where(eq(tenantDomains.tenantId, ctx.tenantId));
        return {
          configured: Boolean(row),
          issuer: row?.issuer ?? null,
          clientId: row?.clientId ?? null,
          enforced: row?.enforced ?? false,
          defaultRole: row?.defaultRole ?? null,
          redirectUri: oidc.redirectUri,
          domains: domains.map(toDomainDto),
        };
      });
    },

    async setConfig(
      ctx: TenantContext,
      input: {
        issuer: string;
        clientId: string;
        clientSecret?: string;
        enforced: boolean;
        defaultRole: MemberRole | null;
      },
    ) {
      if (input.defaultRole === 'owner') {
        throw badRequest('validation_failed', 'Single sign-on cannot make owners', [
          { field: 'body.defaultRole', message: 'cannot be owner' },
        ]);
      }
      await inTenant(db, ctx, 'tenant:security', async () => undefined);
      const [existing] = await db.system.select().from(tenantSso).where(eq(tenantSso.tenantId, ctx.tenantId));
      const clientSecret =
        input.clientSecret ?? (existing ? sealer.open(existing.clientSecret, secretAad(ctx.tenantId)) : undefined);
      if (!clientSecret) {
        throw badRequest('validation_failed', 'clientSecret is required the first time', [
          { field: 'body.clientSecret', message: 'is required' },
        ]);
      }
      // The issuer must answer now (and be https on a public address), or nobody could sign in.
      await oidc.probe({ key: tenantKey(ctx.tenantId), issuer: input.issuer, clientId: input.clientId, clientSecret });
      await inTenant(db, ctx, 'tenant:security', async (tx) => {
        if (input.enforced) {
          const [verified] = await tx
            .select({ domain: tenantDomains.domain })
            .from(tenantDomains)
            .where(and(eq(tenantDomains.tenantId, ctx.tenantId), isNotNull(tenantDomains.verifiedAt)))
            .limit(1);
          if (!verified) {
            throw unprocessable('no_verified_domain', 'Verify an email domain before enforcing single sign-on');
          }
        }
        const values = {
          issuer: input.issuer,
          clientId: input.clientId,
          clientSecret: sealer.seal(clientSecret, secretAad(ctx.tenantId)),
          enforced: input.enforced,
          defaultRole: input.defaultRole,
        };
        await tx
          .insert(tenantSso)
          .values({ tenantId: ctx.tenantId, ...values })
          .onConflictDoUpdate({ target: tenantSso.tenantId, set: { ...values, updatedAt: sql`now()` } });
        await audit.record(tx, ctx.tenantId, {
          action: 'sso.configured',
          actorUserId: ctx.userId,
          details: { issuer: input.issuer, clientId: input.clientId, defaultRole: input.defaultRole },
        });
        if ((existing?.enforced ?? false) !== input.enforced) {
          await audit.record(tx, ctx.tenantId, {
            action: 'sso.enforcement_changed',
            actorUserId: ctx.userId,
            details: { enforced: input.enforced },
          });
        }
      });
      if (input.enforced && !existing?.enforced) await endSessionsOutsideSso(ctx.tenantId, ctx.userId);
      return this.getConfig(ctx);
    },

    async removeConfig(ctx: TenantContext) {
      await inTenant(db, ctx, 'tenant:security', async (tx) => {
        const gone = await tx.delete(tenantSso).where(eq(tenantSso.tenantId, ctx.tenantId)).returning();
        if (gone.length === 0) throw notFound('Single sign-on');
        await audit.record(tx, ctx.tenantId, { action: 'sso.removed', actorUserId: ctx.userId });
      });
      oidc.forget(tenantKey(ctx.tenantId));
    },

    async addDomain(ctx: TenantContext, rawDomain: string) {
      const domain = rawDomain.trim().toLowerCase().replace(/\.$/, '');
      if (!DOMAIN.test(domain)) {
        throw badRequest('validation_failed', 'Not a domain name', [
          { field: 'body.domain', message: 'must be a domain' },
        ]);
      }
      return inTenant(db, ctx, 'tenant:security', async (tx) => {
        const [row] = await tx
          .insert(tenantDomains)
          .values({ tenantId: ctx.tenantId, domain, verificationToken: randomBytes(16).toString('hex') })
          .onConflictDoNothing()
          .returning();
        if (!row) throw conflict('domain_exists', 'This domain is already listed');
        await audit.record(tx, ctx.tenantId, {
          action: 'sso.domain_added',
          actorUserId: ctx.userId,
          details: { domain },
        });
        return toDomainDto(row);
      });
    },

    /** Looks up the TXT record now; a domain is verified by one organization at most. */
    async verifyDomain(ctx: TenantContext, domain: string) {
      const row = await inTenant(db, ctx, 'tenant:security', async (tx) => {
        const [r] = await tx
          .select()
          .from(tenantDomains)
          .where(and(eq(tenantDomains.tenantId, ctx.tenantId), eq(tenantDomains.domain, domain.toLowerCase())));
        return r;
      });
      if (!row) throw notFound('Domain');
      if (row.verifiedAt) return toDomainDto(row);
      const expected = txtValue(row.verificationToken);
      let records: string[][] = [];
      try {
        records = await resolver.resolveTxt(`${TXT_PREFIX}.${row.domain}`);
      } catch {
        records = [];
      }
      if (!records.some((chunks) => chunks.join('') === expected)) {
        throw unprocessable(
          'domain_not_verified',
          `No TXT record ${TXT_PREFIX}.${row.domain} with the value ${expected} was found; DNS changes can take a while`,
        );
      }
      const verified = await inTenant(db, ctx, 'tenant:security', async (tx) => {
        try {
          const [done] = await tx
            .update(tenantDomains)
            .set({ verifiedAt: sql`now()` })
            .where(and(eq(tenantDomains.tenantId, ctx.tenantId), eq(tenantDomains.domain, row.domain)))
            .returning();
          await audit.record(tx, ctx.tenantId, {
            action: 'sso.domain_verified',
            actorUserId: ctx.userId,
            details: { domain: row.domain },
          });
          return toDomainDto(done!);
        } catch (err) {
          if (isUniqueViolation(err, 'tenant_domains_verified_domain_key')) {
            throw conflict('domain_taken', 'Another organization has verified this domain');
          }
          throw err;
        }
      });
      const [sso] = await db.system
        .select({ enforced: tenantSso.enforced })
        .from(tenantSso)
        .where(eq(tenantSso.tenantId, ctx.tenantId));
      if (sso?.enforced) await endSessionsOutsideSso(ctx.tenantId, ctx.userId, row.domain);
      return verified;
    },

    async removeDomain(ctx: TenantContext, domain: string) {
      await inTenant(db, ctx, 'tenant:security', async (tx) => {
        const gone = await tx
          .delete(tenantDomains)
          .where(and(eq(tenantDomains.tenantId, ctx.tenantId), eq(tenantDomains.domain, domain.toLowerCase())))
          .returning();
        if (gone.length === 0) throw notFound('Domain');
        await audit.record(tx, ctx.tenantId, {
          action: 'sso.domain_removed',
          actorUserId: ctx.userId,
          details: { domain: gone[0]!.domain },
        });
      });
    },

    /** Key rotation (`npm run secrets:reseal`): client secrets sealed under a previous key, under the current one. */
    reseal: () =>
      resealAll(sealer, {
        page: (after, limit) =>
          db.system
            .select({ id: tenantSso.tenantId, sealed: tenantSso.clientSecret })
            .from(tenantSso)
            .where(after ? gt(tenantSso.tenantId, after) : undefined)
            .orderBy(asc(tenantSso.tenantId))
            .limit(limit),
        aad: (row) => secretAad(row.id),
        write: async (row, next) =>
          (
            await db.system
              .update(tenantSso)
              .set({ clientSecret: next })
              .where(and(eq(tenantSso.tenantId, row.id), eq(tenantSso.clientSecret, row.sealed)))
              .returning({ id: tenantSso.tenantId })
          ).length > 0,
      }),

    /** Maintenance: sign-ins started and never finished. */
    purgeStates: async (before: Date) =>
      (
        await db.system
          .delete(oidcStates)
          .where(sql`${oidcStates.expiresAt} < ${before}`)
          .returning({ s: oidcStates.stateHash })
      ).length,
  };
}

const txtValue = (token: string) => `quire-verification=${token}`;
const toDomainDto = (d: typeof tenantDomains.$inferSelect) => ({
  domain: d.domain,
  verified: d.verifiedAt !== null,
  verifiedAt: d.verifiedAt?.toISOString() ?? null,
  txtRecordName: `${TXT_PREFIX}.${d.domain}`,
  txtRecordValue: txtValue(d.verificationToken),
});

const ssoRequired = (tenantSlug: string) =>
  new AppError(403, 'sso_required', 'Your organization requires signing in through its identity provider', {
    tenantSlug,
    authorizeUrl: `/api/v1/auth/sso/${tenantSlug}/authorize`,
  });

export type SsoService = ReturnType<typeof createSsoService>;
