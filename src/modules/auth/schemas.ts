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
export const loginResult = refreshResult.extend({ user: publicUser });

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
