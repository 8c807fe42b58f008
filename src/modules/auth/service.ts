import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Cache } from '../../platform/cache/index.js';
import type { Database, Executor } from '../../platform/db/index.js';
import { conflict, isUniqueViolation, notFound, unauthorized } from '../../shared/errors.js';
import type { Outbox } from '../jobs/outbox.js';
import { hashPassword, verifyPassword } from './passwords.js';
import * as repo from './repository.js';
import { type AccessTokens, hashToken, newRefreshToken } from './tokens.js';

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

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export function createAuthService(deps: {
  db: Database;
  tokens: AccessTokens;
  refreshTokenTtlDays: number;
  log: FastifyBaseLogger;
  cache: Cache;
  outbox: Outbox;
}) {
  const { db, tokens, cache, outbox } = deps;
  const refreshTtlMs = deps.refreshTokenTtlDays * 86_400_000;

  async function issue(
    exec: Executor,
    userId: string,
    tenantId: string | null,
    familyId: string = randomUUID(),
  ): Promise<TokenPair> {
    const refreshToken = newRefreshToken();
    await repo.insertRefreshToken(exec, {
      userId,
      familyId,
      tenantId,
      tokenHash: hashToken(refreshToken),
      expiresAt: new Date(Date.now() + refreshTtlMs),
    });
    return {
      accessToken: tokens.sign(tenantId ? { sub: userId, tid: tenantId } : { sub: userId }),
      refreshToken,
      expiresIn: tokens.ttlSeconds,
      tokenType: 'Bearer',
    };
  }

  return {
    async register(input: { email: string; password: string; name: string }): Promise<PublicUser> {
      const email = normalizeEmail(input.email);
      const passwordHash = await hashPassword(input.password);
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

    async login(input: { email: string; password: string; tenantId?: string }) {
      const user = await repo.findUserByEmail(db.system, normalizeEmail(input.email));
      const ok = await verifyPassword(user?.passwordHash, input.password);
      if (!user || !ok) throw unauthorized('Email or password is incorrect', 'invalid_credentials');
      if (input.tenantId && !(await repo.isMember(db.system, input.tenantId, user.id))) {
        throw notFound('Tenant');
      }
      return { ...(await issue(db.system, user.id, input.tenantId ?? null)), user: toPublicUser(user) };
    },

    /** Rotates: the presented token stops working; presenting it again revokes its family. */
    async refresh(refreshToken: string): Promise<TokenPair> {
      const tokenHash = hashToken(refreshToken);
      // Claim and successor commit together: a crash in between cannot strand the session.
      const pair = await db.transaction(async (tx) => {
        const claimed = await repo.claimRefreshToken(tx, tokenHash);
        return claimed ? issue(tx, claimed.userId, claimed.tenantId, claimed.familyId) : null;
      });
      if (!pair) {
        const known = await repo.findRefreshToken(db.system, tokenHash);
        if (known?.rotatedAt && !known.revokedAt) {
          const revoked = await repo.revokeFamily(db.system, known.familyId);
          deps.log.warn(
            { event: 'refresh_token_reuse', userId: known.userId, familyId: known.familyId, revoked },
            'a rotated refresh token was presented again; its session was revoked',
          );
        }
        throw unauthorized('Refresh token is invalid or expired', 'invalid_refresh_token');
      }
      return pair;
    },

    /** Ends the session the token belongs to; unknown tokens are ignored (idempotent). */
    async logout(refreshToken: string): Promise<void> {
      const known = await repo.findRefreshToken(db.system, hashToken(refreshToken));
      if (known) await repo.revokeFamily(db.system, known.familyId);
    },

    /** The caller and their memberships: read on most requests, so cached until they change. */
    async me(userId: string) {
      const me = await cache.getOrLoad(meKey(userId), async () => {
        const user = await repo.findUserById(db.system, userId);
        if (!user) return null;
        const memberships = await repo.listMembershipsOfUser(db.system, userId);
        return {
          user: { ...toPublicUser(user), createdAt: user.createdAt.toISOString() },
          platformAdmin: user.platformAdmin,
          memberships,
        };
      });
      if (!me) throw unauthorized('The account no longer exists', 'invalid_token');
      return me;
    },

    async isPlatformAdmin(userId: string): Promise<boolean> {
      return (await this.me(userId)).platformAdmin;
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

    async findUserIdByEmail(email: string): Promise<string | undefined> {
      return (await repo.findUserByEmail(db.system, normalizeEmail(email)))?.id;
    },

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
