import { randomBytes } from 'node:crypto';
import { and, asc, eq, gt, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import { Secret, TOTP } from 'otpauth';
import { resealAll, type Sealer } from '../../platform/crypto/sealer.js';
import type { Database, Executor } from '../../platform/db/index.js';
import { mfaChallenges, recoveryCodes, users } from '../../platform/db/schema.js';
import { AppError, conflict, unauthorized } from '../../shared/errors.js';
import type { AuditLog } from '../audit/service.js';
import { revokeUserSessions } from './repository.js';
import { hashToken, newRefreshToken } from './tokens.js';

/** RFC 6238 defaults every authenticator app supports: SHA-1, 6 digits, 30 s; one step of drift either way. */
const PERIOD = 30;
const WINDOW = 1;
const RECOVERY_CODES = 10;
const CHALLENGE_TTL_MS = 5 * 60_000;
const CHALLENGE_ATTEMPTS = 5;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 16 base32 characters (80 random bits) as xxxx-xxxx-xxxx-xxxx: enough entropy for SHA-256 storage. */
function newRecoveryCode(): string {
  const bytes = randomBytes(16);
  const chars = [...bytes].map((b) => BASE32[b & 31]).join('');
  return chars.match(/.{4}/g)!.join('-');
}
const normalizeRecoveryCode = (code: string) => code.toUpperCase().replace(/[^A-Z2-7]/g, '');
const hashRecoveryCode = (code: string) => hashToken(`recovery:${normalizeRecoveryCode(code)}`);

export const invalidMfaCode = () => unauthorized('The code is wrong, expired or already used', 'invalid_mfa_code');

/** A proof of the second factor: a current TOTP code or one unused recovery code. */
export interface SecondFactor {
  code?: string;
  recoveryCode?: string;
}

/**
 * TOTP second factor (RFC 6238): enrolment (a secret, sealed at rest, and its otpauth:// URI for
 * a QR code), confirmation with a first code, ten single-use recovery codes stored as SHA-256,
 * sign-in challenges, and disabling with re-authentication. A code is accepted once: the time
 * step it matched is remembered and older or equal steps are refused (RFC 6238 §5.2).
 */
export function createMfa(deps: { db: Database; sealer: Sealer; audit: AuditLog; issuer: string }) {
  const { db, sealer, audit } = deps;
  const aad = (userId: string) => `totp:${userId}`;
  const totpFor = (email: string, secretBase32: string) =>
    new TOTP({ issuer: deps.issuer, label: email, period: PERIOD, secret: Secret.fromBase32(secretBase32) });

  async function loadUser(exec: Executor, userId: string) {
    const [u] = await exec
      .select({
        id: users.id,
        email: users.email,
        totpSecret: users.totpSecret,
        totpEnabledAt: users.totpEnabledAt,
        totpLastStep: users.totpLastStep,
      })
      .from(users)
      .where(eq(users.id, userId))
      .for('update');
    return u;
  }

  /** Checks a TOTP code in the caller's transaction and consumes its time step; false when wrong or replayed. */
  async function acceptTotp(tx: Executor, userId: string, code: string): Promise<boolean> {
    const u = await loadUser(tx, userId);
    if (!u?.totpSecret || !/^\d{6}$/.test(code)) return false;
    const totp = totpFor(u.email, sealer.open(u.totpSecret, aad(u.id)));
    const delta = totp.validate({ token: code, window: WINDOW });
    if (delta === null) return false;
    const step = totp.counter() + delta;
    if (u.totpLastStep !== null && step <= u.totpLastStep) return false;
    await tx.update(users).set({ totpLastStep: step }).where(eq(users.id, userId));
    return true;
  }

  async function acceptRecoveryCode(tx: Executor, userId: string, code: string): Promise<boolean> {
    const [used] = await tx
      .update(recoveryCodes)
      .set({ usedAt: sql`now()` })
      .where(
        and(
          eq(recoveryCodes.userId, userId),
          eq(recoveryCodes.codeHash, hashRecoveryCode(code)),
          isNull(recoveryCodes.usedAt),
        ),
      )
      .returning({ userId: recoveryCodes.userId });
    return Boolean(used);
  }

  /** Either factor, consumed in `tx`: which one matched, or null. */
  async function acceptSecondFactor(
    tx: Executor,
    userId: string,
    proof: SecondFactor,
  ): Promise<'totp' | 'recovery_code' | null> {
    if (proof.code) return (await acceptTotp(tx, userId, proof.code)) ? 'totp' : null;
    if (proof.recoveryCode) return (await acceptRecoveryCode(tx, userId, proof.recoveryCode)) ? 'recovery_code' : null;
    return null;
  }

  /** After the transaction that consumed it (the audit log writes in a transaction of its own). */
  const recordFactor = (userId: string, factor: 'totp' | 'recovery_code') =>
    factor === 'recovery_code'
      ? audit.recordForUser(userId, { action: 'mfa.recovery_code_used', actorUserId: userId })
      : Promise.resolve();

  async function replaceRecoveryCodes(tx: Executor, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
    await tx.insert(recoveryCodes).values(codes.map((c) => ({ userId, codeHash: hashRecoveryCode(c) })));
    return codes;
  }

  return {
    async status(userId: string) {
      const [u] = await db.system
        .select({ totpSecret: users.totpSecret, totpEnabledAt: users.totpEnabledAt })
        .from(users)
        .where(eq(users.id, userId));
      const [left] = await db.system
        .select({ n: sql<number>`count(*)::int` })
        .from(recoveryCodes)
        .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
      return {
        enabled: Boolean(u?.totpEnabledAt),
        enabledAt: u?.totpEnabledAt?.toISOString() ?? null,
        pending: Boolean(u?.totpSecret && !u.totpEnabledAt),
        recoveryCodesRemaining: u?.totpEnabledAt ? (left?.n ?? 0) : 0,
      };
    },

    async isEnabled(exec: Executor, userId: string): Promise<boolean> {
      const [u] = await exec.select({ on: users.totpEnabledAt }).from(users).where(eq(users.id, userId));
      return Boolean(u?.on);
    },

    /** A new secret (replacing an unconfirmed one); nothing changes for sign-in until it is confirmed. */
    async enroll(userId: string) {
      return db.transaction(async (tx) => {
        const u = await loadUser(tx, userId);
        if (!u) throw unauthorized('The account no longer exists', 'invalid_token');
        if (u.totpEnabledAt) throw conflict('mfa_already_enabled', 'Two-factor authentication is already on');
        const secret = new Secret({ size: 20 });
        await tx
          .update(users)
          .set({ totpSecret: sealer.seal(secret.base32, aad(userId)), totpLastStep: null })
          .where(eq(users.id, userId));
        return { secret: secret.base32, otpauthUri: totpFor(u.email, secret.base32).toString() };
      });
    },

    /** The first code proves the app has the secret: TOTP is on, and ten recovery codes are returned (once). */
    async confirm(userId: string, code: string, keepSession?: string): Promise<string[]> {
      const codes = await db.transaction(async (tx) => {
        const u = await loadUser(tx, userId);
        if (!u?.totpSecret) throw conflict('mfa_not_enrolled', 'Start with POST /auth/mfa/totp/enroll');
        if (u.totpEnabledAt) throw conflict('mfa_already_enabled', 'Two-factor authentication is already on');
        if (!(await acceptTotp(tx, userId, code))) return null;
        await tx.update(users).set({ totpEnabledAt: sql`now()` }).where(eq(users.id, userId));
        // Sessions opened with the password alone end; this one stays.
        await revokeUserSessions(tx, userId, keepSession);
        return replaceRecoveryCodes(tx, userId);
      });
      if (!codes) throw invalidMfaCode();
      await audit.recordForUser(userId, { action: 'mfa.enabled', actorUserId: userId, details: { method: 'totp' } });
      return codes;
    },

    /** Needs a current code or a recovery code (the caller has checked the password). */
    async disable(userId: string, proof: SecondFactor): Promise<void> {
      const factor = await db.transaction(async (tx) => {
        if (!(await this.isEnabled(tx, userId))) throw conflict('mfa_not_enabled', 'Two-factor authentication is off');
        const used = await acceptSecondFactor(tx, userId, proof);
        if (!used) return null;
        await tx
          .update(users)
          .set({ totpSecret: null, totpEnabledAt: null, totpLastStep: null })
          .where(eq(users.id, userId));
        await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
        return used;
      });
      if (!factor) throw invalidMfaCode();
      await recordFactor(userId, factor);
      await audit.recordForUser(userId, { action: 'mfa.disabled', actorUserId: userId });
    },

    /** Ten new recovery codes; the old ones stop working. Needs a current code or a recovery code. */
    async regenerateRecoveryCodes(userId: string, proof: SecondFactor): Promise<string[]> {
      const done = await db.transaction(async (tx) => {
        if (!(await this.isEnabled(tx, userId))) throw conflict('mfa_not_enabled', 'Two-factor authentication is off');
        const factor = await acceptSecondFactor(tx, userId, proof);
        return factor ? { factor, codes: await replaceRecoveryCodes(tx, userId) } : null;
      });
      if (!done) throw invalidMfaCode();
      await recordFactor(userId, done.factor);
      const { codes } = done;
      await audit.recordForUser(userId, { action: 'mfa.recovery_codes_regenerated', actorUserId: userId });
      return codes;
    },

    /** After a right first factor: a single-use token for POST /auth/mfa/verify (5 minutes, 5 attempts). */
    async challenge(userId: string, tenantId: string | null, amr: string[]) {
      const token = newRefreshToken();
      await db.system.insert(mfaChallenges).values({
        userId,
        tenantId,
        amr,
        tokenHash: hashToken(token),
        expiresAt: new Date(Date.now() + CHALLENGE_TTL_MS),
      });
      return {
        mfaRequired: true as const,
        mfaToken: token,
        methods: ['totp', 'recovery_code'] as Array<'totp' | 'recovery_code'>,
        expiresIn: CHALLENGE_TTL_MS / 1000,
      };
    },

    /**
     * Completes a challenge: the right code consumes it and returns who signed in and how; a wrong
     * one counts an attempt (`status: 'wrong'`, for the caller to count against the account), and
     * the fifth wrong one voids the challenge.
     */
    async verify(mfaToken: string, proof: SecondFactor) {
      const tokenHash = hashToken(mfaToken);
      const result = await db.transaction(async (tx) => {
        const [ch] = await tx
          .select()
          .from(mfaChallenges)
          .where(
            and(
              eq(mfaChallenges.tokenHash, tokenHash),
              isNull(mfaChallenges.usedAt),
              gt(mfaChallenges.expiresAt, sql`now()`),
              lt(mfaChallenges.attempts, CHALLENGE_ATTEMPTS),
            ),
          )
          .for('update');
        if (!ch) return { status: 'expired' as const };
        const factor = await acceptSecondFactor(tx, ch.userId, proof);
        if (!factor) {
          await tx
            .update(mfaChallenges)
            .set({ attempts: sql`${mfaChallenges.attempts} + 1` })
            .where(eq(mfaChallenges.id, ch.id));
          return { status: 'wrong' as const, userId: ch.userId };
        }
        await tx.update(mfaChallenges).set({ usedAt: sql`now()` }).where(eq(mfaChallenges.id, ch.id));
        return { status: 'ok' as const, factor, userId: ch.userId, tenantId: ch.tenantId, amr: [...ch.amr, 'otp'] };
      });
      if (result.status === 'expired') {
        throw new AppError(401, 'mfa_challenge_expired', 'This sign-in has expired or was used; sign in again');
      }
      if (result.status === 'wrong') {
        await audit.recordForUser(result.userId, { action: 'mfa.challenge_failed', actorUserId: result.userId });
        return result;
      }
      await recordFactor(result.userId, result.factor);
      return result;
    },

    /** Key rotation (`npm run secrets:reseal`): TOTP secrets sealed under a previous key, under the current one. */
    reseal: () =>
      resealAll(sealer, {
        page: (after, limit) =>
          db.system
            .select({ id: users.id, sealed: sql<string>`${users.totpSecret}` })
            .from(users)
            .where(and(isNotNull(users.totpSecret), after ? gt(users.id, after) : undefined))
            .orderBy(asc(users.id))
            .limit(limit),
        aad: (row) => aad(row.id),
        write: async (row, next) =>
          (
            await db.system
              .update(users)
              .set({ totpSecret: next })
              .where(and(eq(users.id, row.id), eq(users.totpSecret, row.sealed)))
              .returning({ id: users.id })
          ).length > 0,
      }),

    /** Maintenance: challenges that ended before `before`. */
    purgeChallenges: async (before: Date) =>
      (
        await db.system
          .delete(mfaChallenges)
          .where(or(lt(mfaChallenges.expiresAt, before), lt(mfaChallenges.usedAt, before)))
          .returning({ id: mfaChallenges.id })
      ).length,
  };
}

export type Mfa = ReturnType<typeof createMfa>;
