import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Database, Executor } from '../../platform/db/index.js';
import { conflict, isUniqueViolation, notFound, unauthorized } from '../../shared/errors.js';
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

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export function createAuthService(deps: {
  db: Database;
  tokens: AccessTokens;
  refreshTokenTtlDays: number;
  log: FastifyBaseLogger;
}) {
  const { db, tokens } = deps;
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
        return await db.transaction(async (tx) => {
          const user = await repo.insertUser(tx, { email, name: input.name.trim(), passwordHash });
          await repo.acceptInvitations(tx, user.id, email);
          return toPublicUser(user);
        });
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

    async me(userId: string) {
      const user = await repo.findUserById(db.system, userId);
      if (!user) throw unauthorized('The account no longer exists', 'invalid_token');
      const memberships = await repo.listMembershipsOfUser(db.system, userId);
      return { user: { ...toPublicUser(user), createdAt: user.createdAt.toISOString() }, memberships };
    },

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
