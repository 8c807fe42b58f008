import { z } from 'zod';

export const email = z.email().max(254).meta({ example: 'ada@example.com' });
const password = z.string().min(10, 'must be at least 10 characters').max(256);

export const registerBody = z.object({
  email,
  password,
  name: z.string().trim().min(1).max(100),
});

export const loginBody = z.object({
  email,
  password: z.string().min(1).max(256),
  /** Optional: bind the session to a tenant (the `tid` claim of its access tokens). */
  tenantId: z.uuid().optional(),
  mode: z
    .enum(['bearer', 'cookie'])
    .optional()
    .describe('cookie: the refresh token goes in an httpOnly cookie, with a CSRF token in the body (browsers)'),
});

export const refreshBody = z.object({ refreshToken: z.string().min(16).max(200) });

/** A token from an email link (256 random bits, base64url). */
export const tokenBody = z.object({ token: z.string().min(16).max(200) });
export const forgotPasswordBody = z.object({ email });
export const resetPasswordBody = z.object({ token: z.string().min(16).max(200), password });
export const changePasswordBody = z.object({ currentPassword: z.string().min(1).max(256), newPassword: password });

export const publicUser = z.object({ id: z.uuid(), email: z.string(), name: z.string() }).meta({ id: 'User' });

export const tokenPair = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  expiresIn: z.number().int().describe('Seconds until the access token expires'),
  tokenType: z.literal('Bearer'),
});

/** Bearer mode returns the refresh token; cookie mode sets it as a cookie and returns a CSRF token. */
export const refreshResult = tokenPair.extend({
  refreshToken: z.string().optional().describe('Bearer mode only'),
  csrfToken: z.string().optional().describe('Cookie mode only: send it as X-CSRF-Token'),
});
export const session = refreshResult.extend({ user: publicUser });
export const mfaChallenge = z
  .object({
    mfaRequired: z.literal(true),
    mfaToken: z.string().describe('Send it with a code to POST /auth/mfa/verify; single use'),
    methods: z.array(z.enum(['totp', 'recovery_code'])),
    expiresIn: z.number().int().describe('Seconds the challenge stays open'),
  })
  .meta({ id: 'MfaChallenge' });
/** A session, or (accounts with a second factor) a challenge to complete at POST /auth/mfa/verify. */
export const loginResult = z.union([session, mfaChallenge]);

const totpCode = z.string().regex(/^\d{6}$/, 'must be the 6 digits your authenticator app shows');
const recoveryCode = z.string().min(16).max(24);
/** A current code from the authenticator app, or one of the recovery codes. */
export const secondFactor = z
  .object({ code: totpCode.optional(), recoveryCode: recoveryCode.optional() })
  .refine((v) => Boolean(v.code) !== Boolean(v.recoveryCode), 'send either code or recoveryCode');
export const mfaVerifyBody = z
  .object({
    mfaToken: z.string().min(16).max(200),
    code: totpCode.optional(),
    recoveryCode: recoveryCode.optional(),
    mode: loginBody.shape.mode,
  })
  .refine((v) => Boolean(v.code) !== Boolean(v.recoveryCode), 'send either code or recoveryCode');
export const mfaEnrollBody = z.object({ password: z.string().min(1).max(256).optional() });
export const mfaConfirmBody = z.object({ code: totpCode });
export const mfaReauthBody = z
  .object({
    password: z.string().min(1).max(256).optional().describe('Required when the account has a password'),
    code: totpCode.optional(),
    recoveryCode: recoveryCode.optional(),
  })
  .refine((v) => Boolean(v.code) !== Boolean(v.recoveryCode), 'send either code or recoveryCode');
export const mfaStatus = z.object({
  enabled: z.boolean(),
  enabledAt: z.iso.datetime().nullable(),
  pending: z.boolean().describe('Enrolled but not confirmed yet'),
  recoveryCodesRemaining: z.number().int(),
});
export const recoveryCodes = z.object({
  recoveryCodes: z.array(z.string()).describe('Ten single-use codes, shown this once: store them somewhere safe'),
});

export const meResult = z.object({
  user: publicUser.extend({
    emailVerified: z.boolean().describe('Unverified users can sign in but cannot publish or manage members'),
    createdAt: z.iso.datetime(),
  }),
  platformAdmin: z.boolean().describe('Operates the deployment: sees every job and the queue dashboard'),
  memberships: z.array(
    z.object({
      tenantId: z.uuid(),
      name: z.string(),
      slug: z.string(),
      role: z.enum(['owner', 'admin', 'editor', 'author', 'viewer']),
    }),
  ),
});

export const sessionInfo = z.object({
  id: z.uuid().describe('The session (the `sid` claim of its access tokens)'),
  current: z.boolean().describe('The session this request is made from'),
  createdAt: z.iso.datetime().describe('Signed in'),
  lastActiveAt: z.iso.datetime().describe('Last signed in or refreshed'),
  expiresAt: z.iso.datetime().describe('Ends unless refreshed before'),
  ip: z.string().nullable().describe('Client address at the last sign-in or refresh'),
  userAgent: z.string().nullable(),
  tenantId: z.uuid().nullable().describe('The organization the session is bound to, if any'),
  amr: z.array(z.string()).describe('How it was opened: pwd, otp, sso'),
});
export const sessionParams = z.object({ sessionId: z.uuid() });
