import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Cache } from '../../platform/cache/index.js';
import type { Database, Executor } from '../../platform/db/index.js';
import type { AuthTokenPurpose } from '../../platform/db/schema.js';
import { AppError, badRequest, conflict, isUniqueViolation, notFound, unauthorized } from '../../shared/errors.js';
import { currentOrigin } from '../audit/context.js';
import type { AuditLog } from '../audit/service.js';
import type { Outbox } from '../jobs/outbox.js';
import { invalidMfaCode, type Mfa, type SecondFactor } from './mfa.js';
import type { PasswordHasher } from './passwords.js';
import * as repo from './repository.js';
import { type AccessTokens, hashToken, newEmailToken, newRefreshToken } from './tokens.js';

export interface PublicUser {
  id: string;
  email: string;
  name: string;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  tokenType: 'Bearer';
}

const toPublicUser = (u: { id: string; email: string; name: string }): PublicUser => ({
  id: u.id,
  email: u.email,
  name: u.name,
});

const meKey = (userId: string) => `me:${userId}`;
/** The ids of a user's live sessions, checked on every request made with an access token. */
const sessionsKey = (userId: string) => `sessions:${userId}`;
/** A session found ended: remembered for an access token's lifetime, so its token costs no query. */
const endedKey = (sessionId: string) => `session-ended:${sessionId}`;

type UserRow = NonNullable<Awaited<ReturnType<typeof repo.findUserById>>>;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/** How long an emailed link works. */
const EMAIL_TOKEN_TTL_MS: Record<AuthTokenPurpose, number> = {
  'verify-email': 7 * 86_400_000,
  'reset-password': 3_600_000,
};

const invalidCredentials = () => unauthorized('Email or password is incorrect', 'invalid_credentials');
const invalidEmailToken = () =>
  badRequest('invalid_token', 'This link is invalid, already used or expired; ask for a new one');

export function createAuthService(deps: {
  db: Database;
  tokens: AccessTokens;
  refreshTokenTtlDays: number;
  log: FastifyBaseLogger;
  cache: Cache;
  outbox: Outbox;
  /** Consecutive failed sign-ins that lock an account, and for how long. */
  lockout: { threshold: number; durationMs: number };
  passwords: PasswordHasher;
  audit: AuditLog;
  mfa: Mfa;
  /**
   * Consulted on every refresh, in its transaction: an error refuses the session (its family is
   * revoked) and is what the caller gets. Single sign-on enforcement uses it, so a session that
   * escaped the bulk revocation (a crash, a race with turning enforcement on) still ends.
   */
  refreshPolicy?: (
    session: { userId: string; tenantId: string | null; amr: string[] },
    exec: Executor,
  ) => Promise<AppError | null>;
}) {
  const { db, tokens, cache, outbox, passwords, audit } = deps;
  const refreshTtlMs = deps.refreshTokenTtlDays * 86_400_000;

  /** Work for the email queue, committed before the caller hears back. */
  async function sendLater(name: string, payload: Record<string, unknown>) {
    await db.transaction((tx) =>
      outbox.record(tx, { queue: 'email', name, payload, idempotencyKey: `${name}:${randomUUID()}` }),
    );
    outbox.committed();
  }

  const isLocked = (u: { lockedUntil: Date | null }) => Boolean(u.lockedUntil && u.lockedUntil.getTime() > Date.now());

  /**
   * One more wrong password or code against the account, wherever it was given (sign-in, its
   * second step, or re-authentication inside a session); the threshold-th locks the account.
   * A lock that has run out gives a fresh set of attempts.
   */
  async function countFailure(user: { id: string; lockedUntil: Date | null }, step: 'password' | 'mfa' | 'reauth') {
    if (user.lockedUntil && !isLocked(user)) await repo.clearFailedLogins(db.system, user.id);
    const after = await repo.recordFailedLogin(db.system, user.id, deps.lockout.threshold, deps.lockout.durationMs);
    if (step === 'password') {
      await audit.recordForUser(user.id, {
        action: 'login.failed',
        actorUserId: user.id,
        details: { reason: 'password', failures: after?.failedLogins },
      });
    }
    if (after && after.failedLogins === deps.lockout.threshold) {
      deps.log.warn(
        { event: 'account_locked', userId: user.id, until: after.lockedUntil, after: step },
        'an account was locked after repeated wrong passwords or codes',
      );
      await audit.recordForUser(user.id, {
        action: 'account.locked',
        actorUserId: user.id,
        details: { until: after.lockedUntil?.toISOString(), ...(step === 'password' ? {} : { after: step }) },
      });
    }
  }

  /** Inside a session the caller is known, so a lock is said plainly (a sign-in never says it). */
  const accountLocked = () =>
    new AppError(
      403,
      'account_locked',
      `Too many wrong passwords or codes: try again in ${Math.ceil(deps.lockout.durationMs / 60_000)} minutes, or reset the password`,
    );

  async function issue(
    exec: Executor,
    userId: string,
    tenantId: string | null,
    amr: string[],
    familyId: string = randomUUID(),
  ): Promise<TokenPair> {
    const refreshToken = newRefreshToken();
    const origin = currentOrigin();
    await repo.insertRefreshToken(exec, {
      userId,
      familyId,
      tenantId,
      amr,
      tokenHash: hashToken(refreshToken),
      expiresAt: new Date(Date.now() + refreshTtlMs),
      ip: origin?.ip ?? null,
      userAgent: origin?.userAgent ?? null,
    });
    return {
      accessToken: tokens.sign(
        tenantId ? { sub: userId, tid: tenantId, sid: familyId, amr } : { sub: userId, sid: familyId, amr },
      ),
      refreshToken,
      expiresIn: tokens.ttlSeconds,
      tokenType: 'Bearer',
    };
  }

  return {
    async register(input: { email: string; password: string; name: string }): Promise<PublicUser> {
      const email = normalizeEmail(input.email);
      const passwordHash = await passwords.hash(input.password);
      try {
        const created = await db.transaction(async (tx) => {
          const user = await repo.insertUser(tx, { email, name: input.name.trim(), passwordHash });
          await repo.acceptInvitations(tx, user.id, email);
          // The welcome email commits with the account, or neither happens.
          await outbox.record(tx, {
            queue: 'email',
            name: 'welcome',
            payload: { userId: user.id },
            idempotencyKey: `welcome:${user.id}`,
          });
          return toPublicUser(user);
        });
        outbox.committed();
        return created;
      } catch (err) {
        if (isUniqueViolation(err, 'users_email_key')) {
          throw conflict('email_taken', 'An account with this email already exists');
        }
        throw err;
      }
    },

    /**
     * A locked account answers exactly as a wrong password does (the password is still checked,
     * so the timing is the same): nothing tells an attacker that the account exists or is locked.
     */
    async login(input: { email: string; password: string; tenantId?: string }) {
      const user = await repo.findUserByEmail(db.system, normalizeEmail(input.email));
      const ok = await passwords.verify(user?.passwordHash, input.password);
      if (!user) throw invalidCredentials();
      if (isLocked(user)) {
        deps.log.warn({ event: 'login_while_locked', userId: user.id }, 'sign-in refused: the account is locked');
        await audit.recordForUser(user.id, {
          action: 'login.failed',
          actorUserId: user.id,
          details: { reason: 'locked' },
        });
        throw invalidCredentials();
      }
      if (!ok) {
        await countFailure(user, 'password');
        throw invalidCredentials();
      }
      if (user.failedLogins > 0 || user.lockedUntil) await repo.clearFailedLogins(db.system, user.id);
      return this.startSession(user, input.tenantId ?? null, ['pwd']);
    },

    /**
     * The first factor was right (a password, an identity provider): a session, or, for an
     * account with a second factor, a challenge for POST /auth/mfa/verify.
     */
    async startSession(who: string | UserRow, tenantId: string | null, amr: string[]) {
      // The caller may have the account's row already (password sign-in): not read twice.
      const user = typeof who === 'string' ? await repo.findUserById(db.system, who) : who;
      if (!user) throw invalidCredentials();
      const userId = user.id;
      if (tenantId && !(await repo.isMember(db.system, tenantId, userId))) throw notFound('Tenant');
      if (!amr.includes('otp') && user.totpEnabledAt) return deps.mfa.challenge(userId, tenantId, amr);
      await audit.recordForUser(userId, { action: 'login.succeeded', actorUserId: userId, details: { amr } });
      return { ...(await issue(db.system, userId, tenantId, amr)), user: toPublicUser(user) };
    },

    /** The second step of a sign-in with a second factor. */
    async verifyMfa(mfaToken: string, proof: SecondFactor) {
      const done = await deps.mfa.verify(mfaToken, proof);
      if (done.status === 'wrong') {
        // Wrong codes count with wrong passwords: the account locks as it would for those.
        const user = await repo.findUserById(db.system, done.userId);
        if (user) await countFailure(user, 'mfa');
        throw invalidMfaCode();
      }
      const user = await repo.findUserById(db.system, done.userId);
      if (user && isLocked(user)) {
        throw new AppError(401, 'mfa_challenge_expired', 'This sign-in has expired or was used; sign in again');
      }
      if (user && user.failedLogins > 0) await repo.clearFailedLogins(db.system, user.id);
      const session = await this.startSession(done.userId, done.tenantId, done.amr);
      if ('mfaRequired' in session) throw new Error('a verified challenge cannot need another');
      return session;
    },

    /**
     * Re-authentication for sensitive changes: the password, when the account has one. A wrong
     * one counts against the account like a wrong sign-in, so a stolen session cannot guess the
     * password at leisure; a locked account is refused even the right one. An account without a
     * password (identity provider only) passes, unless the change is the password itself.
     */
    async reauthenticate(
      userId: string,
      password: string | undefined,
      opts: { passwordless?: 'allow' | 'refuse' } = {},
    ) {
      const user = await repo.findUserById(db.system, userId);
      if (!user) throw unauthorized('The account no longer exists', 'invalid_token');
      if (isLocked(user)) throw accountLocked();
      if (!user.passwordHash) {
        if (opts.passwordless === 'refuse') throw badRequest('wrong_password', 'The current password is incorrect');
        return;
      }
      if (!password) throw badRequest('wrong_password', 'The current password is needed');
      if (!(await passwords.verify(user.passwordHash, password))) {
        await countFailure(user, 'reauth');
        throw badRequest('wrong_password', 'The current password is incorrect');
      }
    },

    /**
     * Runs a change that takes a second factor (`run` throws `invalid_mfa_code` on a wrong one):
     * a wrong code counts against the account as a wrong password does.
     */
    async withSecondFactor<T>(userId: string, run: () => Promise<T>): Promise<T> {
      try {
        return await run();
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid_mfa_code') {
          const user = await repo.findUserById(db.system, userId);
          if (user) await countFailure(user, 'reauth');
        }
        throw err;
      }
    },

    /** Rotates: the presented token stops working; presenting it again revokes its family. */
    async refresh(refreshToken: string): Promise<TokenPair> {
      const tokenHash = hashToken(refreshToken);
      // Claim and successor commit together: a crash in between cannot strand the session.
      const pair = await db.transaction(async (tx) => {
        const claimed = await repo.claimRefreshToken(tx, tokenHash);
        if (!claimed) return null;
        const refusal = await deps.refreshPolicy?.(claimed, tx);
        if (refusal) {
          await repo.revokeFamily(tx, claimed.familyId);
          return { refusal, userId: claimed.userId };
        }
        return issue(tx, claimed.userId, claimed.tenantId, claimed.amr, claimed.familyId);
      });
      if (pair && 'refusal' in pair) {
        deps.log.info(
          { event: 'refresh_refused', reason: pair.refusal.code },
          'a session was refused at refresh by policy',
        );
        await this.forgetSessions(pair.userId);
        throw pair.refusal;
      }
      if (!pair) {
        const known = await repo.findRefreshToken(db.system, tokenHash);
        if (known?.rotatedAt && !known.revokedAt) {
          const revoked = await repo.revokeFamily(db.system, known.familyId);
          await this.forgetSessions(known.userId);
          deps.log.warn(
            { event: 'refresh_token_reuse', userId: known.userId, familyId: known.familyId, revoked },
            'a rotated refresh token was presented again; its session was revoked',
          );
          await audit.recordForUser(known.userId, {
            action: 'refresh_token.reused',
            actorUserId: null,
            details: { revokedTokens: revoked },
          });
        }
        throw unauthorized('Refresh token is invalid or expired', 'invalid_refresh_token');
      }
      return pair;
    },

    /** Ends the session the token belongs to; unknown tokens are ignored (idempotent). */
    async logout(refreshToken: string): Promise<void> {
      const known = await repo.findRefreshToken(db.system, hashToken(refreshToken));
      if (!known) return;
      await repo.revokeFamily(db.system, known.familyId);
      await this.forgetSessions(known.userId);
    },

    /** The caller and their memberships: read on most requests, so cached until they change. */
    async me(userId: string) {
      const me = await cache.getOrLoad(meKey(userId), async () => {
        const user = await repo.findUserById(db.system, userId);
        if (!user) return null;
        const memberships = await repo.listMembershipsOfUser(db.system, userId);
        return {
          user: {
            ...toPublicUser(user),
            emailVerified: user.emailVerifiedAt !== null,
            createdAt: user.createdAt.toISOString(),
          },
          platformAdmin: user.platformAdmin,
          memberships,
        };
      });
      if (!me) throw unauthorized('The account no longer exists', 'invalid_token');
      return me;
    },

    async isEmailVerified(userId: string): Promise<boolean> {
      return (await this.me(userId)).user.emailVerified;
    },

    /** The signed-in user's live sessions; `current` marks the one asking. */
    async listSessions(userId: string, currentSessionId: string | undefined) {
      return (await repo.listSessions(db.system, userId)).map((r) => ({
        id: r.id,
        current: r.id === currentSessionId,
        createdAt: r.createdAt.toISOString(),
        lastActiveAt: r.lastActiveAt.toISOString(),
        expiresAt: r.expiresAt.toISOString(),
        ip: r.ip,
        userAgent: r.userAgent,
        tenantId: r.tenantId,
        amr: r.amr,
      }));
    },

    /** Signs one session out (a lost laptop): its refresh token and its access tokens stop at once. */
    async revokeSession(userId: string, sessionId: string): Promise<void> {
      if (!(await repo.revokeSession(db.system, userId, sessionId))) throw notFound('Session');
      await this.forgetSessions(userId);
      await audit.recordForUser(userId, {
        action: 'sessions.revoked',
        actorUserId: userId,
        details: { revoked: 1, sessionId },
      });
    },

    /** Every session of the user ends: refresh tokens revoked, access tokens refused from now on. */
    async logoutAll(userId: string): Promise<void> {
      const revoked = await repo.revokeUserSessions(db.system, userId);
      await this.forgetSessions(userId);
      await audit.recordForUser(userId, { action: 'sessions.revoked', actorUserId: userId, details: { revoked } });
    },

    /**
     * A single-use emailed token for the email jobs: the token exists only in the email (its
     * hash is stored), and a new one voids the older ones of the same purpose.
     */
    async createEmailToken(userId: string, purpose: AuthTokenPurpose): Promise<string> {
      const token = newEmailToken();
      await db.transaction(async (tx) => {
        await repo.voidAuthTokens(tx, userId, purpose);
        await repo.insertAuthToken(tx, {
          userId,
          purpose,
          tokenHash: hashToken(token),
          expiresAt: new Date(Date.now() + EMAIL_TOKEN_TTL_MS[purpose]),
        });
      });
      return token;
    },

    async verifyEmail(token: string): Promise<void> {
      const userId = await db.transaction(async (tx) => {
        const id = await repo.consumeAuthToken(tx, 'verify-email', hashToken(token));
        if (id) await repo.markEmailVerified(tx, id);
        return id;
      });
      if (!userId) throw invalidEmailToken();
      await cache.invalidate(meKey(userId));
    },

    /** Another verification email (nothing if the address is verified already). */
    async resendVerification(userId: string): Promise<void> {
      if (await this.isEmailVerified(userId)) return;
      await sendLater('verify-email', { userId });
    },

    /**
     * Always the same answer and the same work: one outbox row, whatever the address. Whether
     * an account exists is decided by the email job, out of the request's timing.
     */
    async forgotPassword(email: string): Promise<void> {
      await sendLater('password-reset', { email: normalizeEmail(email) });
    },

    /** A reset link sets a new password, unlocks the account, proves the address and ends every session. */
    async resetPassword(token: string, password: string): Promise<void> {
      const passwordHash = await passwords.hash(password);
      const userId = await db.transaction(async (tx) => {
        const id = await repo.consumeAuthToken(tx, 'reset-password', hashToken(token));
        if (!id) return undefined;
        await repo.setPassword(tx, id, passwordHash);
        await repo.markEmailVerified(tx, id);
        await repo.revokeUserSessions(tx, id);
        return id;
      });
      if (!userId) throw invalidEmailToken();
      deps.log.info({ event: 'password_reset', userId }, 'a password was reset; every session was ended');
      await audit.recordForUser(userId, { action: 'password.reset', actorUserId: userId });
      await cache.invalidate(meKey(userId), sessionsKey(userId));
    },

    /** Needs the current password; the caller's own session stays, every other one ends. */
    async changePassword(userId: string, sessionId: string | undefined, current: string, next: string) {
      // An account without a password (identity provider only) sets one through forgot-password.
      await this.reauthenticate(userId, current, { passwordless: 'refuse' });
      const passwordHash = await passwords.hash(next);
      await db.transaction(async (tx) => {
        await repo.setPassword(tx, userId, passwordHash);
        await repo.revokeUserSessions(tx, userId, sessionId);
      });
      await this.forgetSessions(userId);
      deps.log.info({ event: 'password_changed', userId }, 'a password was changed; other sessions were ended');
      await audit.recordForUser(userId, { action: 'password.changed', actorUserId: userId });
    },

    async isPlatformAdmin(userId: string): Promise<boolean> {
      return (await this.me(userId)).platformAdmin;
    },

    /**
     * Whether the session an access token names is live: a signed-out session's access tokens stop
     * at once, not when they expire. Read from the cache; a session not in the cached list (begun
     * since, perhaps on another instance) is looked up before it is refused.
     */
    async isSessionLive(userId: string, sessionId: string): Promise<boolean> {
      const load = () => repo.liveSessionIds(db.system, userId);
      if ((await cache.getOrLoad(sessionsKey(userId), load)).includes(sessionId)) return true;
      if (await cache.get<boolean>(endedKey(sessionId))) return false;
      const fresh = await load();
      await cache.set(sessionsKey(userId), fresh);
      if (fresh.includes(sessionId)) return true;
      await cache.set(endedKey(sessionId), true, { ttlSeconds: tokens.ttlSeconds });
      return false;
    },

    /** After sessions of these users ended (the caller's transaction committed): on every instance. */
    async forgetSessions(...userIds: string[]) {
      if (userIds.length) await cache.invalidate(...userIds.map(sessionsKey));
    },

    /** Drops cached views of these users (memberships or roles changed) on every instance. */
    async forgetUsers(...userIds: string[]) {
      await cache.invalidate(...userIds.map(meKey));
    },

    /** Grants or revokes operator rights (`npm run admin:grant`); false if no such account. */
    async setPlatformAdmin(email: string, platformAdmin: boolean): Promise<boolean> {
      const id = await repo.setPlatformAdmin(db.system, normalizeEmail(email), platformAdmin);
      if (id) await cache.invalidate(meKey(id));
      return Boolean(id);
    },

    async getUser(userId: string): Promise<PublicUser | null> {
      const user = await repo.findUserById(db.system, userId);
      return user ? toPublicUser(user) : null;
    },

    /** Maintenance: refresh tokens that expired (or were revoked) before `before`. */
    purgeRefreshTokens: (before: Date) => repo.deleteRefreshTokensBefore(db.system, before),
    /** Maintenance: emailed tokens used or expired before `before`. */
    purgeEmailTokens: (before: Date) => repo.deleteAuthTokensBefore(db.system, before),

    async findUserByEmail(email: string): Promise<PublicUser | null> {
      const user = await repo.findUserByEmail(db.system, normalizeEmail(email));
      return user ? toPublicUser(user) : null;
    },

    async findUserIdByEmail(email: string): Promise<string | undefined> {
      return (await repo.findUserByEmail(db.system, normalizeEmail(email)))?.id;
    },

    /** The public signing keys (asymmetric signing only; empty with a shared secret). */
    jwks: () => tokens.jwks(),

    verifyAccessToken(token: string) {
      try {
        return tokens.verify(token);
      } catch {
        throw unauthorized('Access token is invalid or expired', 'invalid_token');
      }
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
