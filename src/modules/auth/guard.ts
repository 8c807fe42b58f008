import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { MemberRole } from '../../platform/db/schema.js';
import { AppError, forbidden, notFound, unauthorized } from '../../shared/errors.js';
import { type Action, can, permissions, type RouteAccess, scopesAllow } from '../../shared/permissions.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: checked by the authorization guard; every /api/v1 route declares it. */
    access?: RouteAccess;
    /** Platform operators pass the guard of this route whatever their membership (the jobs API). */
    operators?: boolean;
  }
}

export interface GuardDeps {
  /** The user's role in the tenant (cached; the service checks again in the database), or null. */
  memberRole(userId: string, tenantId: string): Promise<MemberRole | null>;
  /** Whether the tenant requires a second factor of its staff (cached). */
  requiresMfa(tenantId: string): Promise<boolean>;
  isPlatformAdmin(userId: string): Promise<boolean>;
}

const toArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The tenant a guarded request acts in: `/tenants/:id` names it in the path, the others resolved it. */
function tenantOf(request: FastifyRequest): string | undefined {
  return request.tenant?.tenantId ?? (request.params as { id?: string } | undefined)?.id;
}

/**
 * The one route-level authorization guard. Each /api/v1 route declares `config.access` (the app
 * does not start when one does not), and this guard, appended to the route's preHandlers after
 * authentication and tenant resolution, checks it against the permission table:
 * - `public`: nothing to check.
 * - `user`: a signed-in person; an API key is refused (its own account, its organizations).
 * - an action: the caller's role in the request's tenant must hold it (not a member: 404, as for
 *   a tenant that does not exist); an API key must also be of that tenant and hold it in one of
 *   its scopes; and when the tenant requires a second factor, a person's session must have used one.
 * Services check the role again inside the tenant's transaction, against the database.
 */
export const authorization = fp(
  async (app: FastifyInstance, deps: GuardDeps) => {
    function guard(access: Exclude<RouteAccess, 'public'>, operators: boolean): preHandlerHookHandler {
      return async function authorize(request) {
        const auth = request.auth;
        if (!auth) throw unauthorized();
        if (access === 'user' || access === 'operator') {
          if (auth.apiKey) throw apiKeyNotAllowed();
          if (access === 'operator' && !(await deps.isPlatformAdmin(auth.userId))) {
            throw forbidden('This covers every organization: platform operators only');
          }
          return;
        }
        if (operators && !auth.apiKey && (await deps.isPlatformAdmin(auth.userId))) return;
        const tenantId = tenantOf(request);
        if (!tenantId) throw new Error(`route ${request.routeOptions.url} declares ${access} but names no tenant`);
        if (auth.apiKey) {
          if (auth.apiKey.tenantId !== tenantId) throw notFound('Tenant');
          if (!scopesAllow(auth.apiKey.scopes, access)) throw insufficientScope(access);
        }
        const role = await deps.memberRole(auth.userId, tenantId);
        if (!role) throw notFound('Tenant');
        if (!can(role, access)) throw forbidden();
        if (!auth.apiKey && !auth.amr?.includes('otp') && (await deps.requiresMfa(tenantId))) {
          throw new AppError(
            403,
            'mfa_required',
            'This organization requires a second factor: turn on two-factor authentication and sign in with it',
          );
        }
      };
    }

    app.addHook('onRoute', (route) => {
      if (!route.url.startsWith('/api/v1/')) return;
      const access = route.config?.access;
      if (!access) throw new Error(`${route.method} ${route.url}: every /api/v1 route must declare config.access`);
      // The OpenAPI document says who may call each route (the matrix test reads it back).
      const schema = route.schema as
        | (Record<string, unknown> & { description?: string; security?: Array<Record<string, string[]>> })
        | undefined;
      if (schema && schema['x-access'] === undefined) {
        schema['x-access'] = access;
        if (access !== 'public' && access !== 'user' && access !== 'operator' && scopesHolding(access).length > 0) {
          schema.security = [...(schema.security ?? []), { apiKeyAuth: [] }];
        }
        schema.description = [schema.description, `Access: ${describeAccess(access)}.`].filter(Boolean).join('\n\n');
      }
      if (access === 'public') return;
      route.preHandler = [
        ...toArray(route.preHandler as preHandlerHookHandler | preHandlerHookHandler[] | undefined),
        guard(access, route.config?.operators === true),
      ];
    });
  },
  { name: 'quire-authorization', dependencies: ['quire-authentication'] },
);

function describeAccess(access: RouteAccess): string {
  if (access === 'public') return 'anyone';
  if (access === 'user') return 'any signed-in person (not API keys)';
  if (access === 'operator') return 'platform operators (not API keys)';
  const holders = permissions[access] as readonly string[];
  const roles = holders.filter((h) => !h.startsWith('key:'));
  const scopes = scopesHolding(access);
  return `\`${access}\`: roles ${roles.join(', ')}; API key scopes ${scopes.join(', ') || 'none'}`;
}

const apiKeyNotAllowed = () =>
  new AppError(403, 'api_key_not_allowed', 'API keys work on an organization’s routes only; sign in as a person');

const scopesHolding = (action: Action) =>
  (permissions[action] as readonly string[]).filter((p) => p.startsWith('key:')).map((p) => p.slice(4));

const insufficientScope = (action: Action) => {
  const scopes = scopesHolding(action);
  return new AppError(
    403,
    'insufficient_scope',
    `This API key's scopes do not allow this (it needs one of: ${scopes.join(', ') || 'none: people only'})`,
  );
};
