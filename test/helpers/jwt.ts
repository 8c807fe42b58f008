/** The payload of a JWT, not verified (the app does that): what a client may read of its own token. */
export function claimsOf(
  token: string,
): Record<string, unknown> & { sub?: string; sid?: string; tid?: string; amr?: string[] } {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
}

/** The session an access token belongs to (its `sid` claim). */
export const sessionIdOf = (accessToken: string): string => String(claimsOf(accessToken).sid);
