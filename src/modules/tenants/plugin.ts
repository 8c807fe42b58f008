import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import type { TenantContext } from '../../platform/db/index.js';
import { AppError, badRequest, notFound } from '../../shared/errors.js';
import type { TenantsService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.resolveTenant`: the caller and the tenant the request acts in. */
    tenant: TenantContext | null;
  }
  interface FastifyInstance {
    /** preHandler (after authenticate): picks the request's tenant. */
    resolveTenant: (request: FastifyRequest) => Promise<void>;
  }
}

const uuid = z.uuid();

/**
 * The tenant of a request comes from, in order: the `X-Tenant-ID` header, the subdomain of the
 * configured base host, or the access token's `tid` claim. Membership is checked when the
 * request enters the tenant (one round trip with the RLS context), so a tenant the caller does
 * not belong to is a 404 there.
 */
export const tenantResolution = fp(
  async (
    app: FastifyInstance,
    opts: {
      tenants: TenantsService;
      baseHost?: string;
      tenantRateLimit: { max: number; timeWindow: number };
      /** Whether the user belongs to the tenant (cached): only members spend a tenant's budget. */
      isMember: (userId: string, tenantId: string) => Promise<boolean>;
    },
  ) => {
    const suffix = opts.baseHost ? `.${opts.baseHost.split(':')[0]}` : undefined;
    // One budget per tenant across its users, addresses and instances (with Redis): a tenant's
    // integration running wild slows that tenant, not the others. On top of the per-IP limit.
    const tenantCounter = app.createRateLimit({
      max: opts.tenantRateLimit.max,
      timeWindow: opts.tenantRateLimit.timeWindow,
      keyGenerator: (req) => `tenant:${req.tenant?.tenantId ?? ''}`,
    });
    app.decorateRequest('tenant', null);
    app.decorate('resolveTenant', async (request: FastifyRequest) => {
      const userId = request.auth?.userId;
      if (!userId) throw new Error('resolveTenant needs authenticate first');
      const header = request.headers['x-tenant-id'];
      let tenantId: string | undefined;
      if (header !== undefined) {
        if (typeof header !== 'string' || !uuid.safeParse(header).success) {
          throw badRequest('invalid_tenant_id', 'X-Tenant-ID must be a tenant id (UUID)');
        }
        tenantId = header;
      } else if (suffix && request.hostname.endsWith(suffix)) {
        const slug = request.hostname.slice(0, -suffix.length);
        tenantId = await opts.tenants.findIdBySlug(slug);
        if (!tenantId) throw notFound('Tenant');
      } else {
        tenantId = request.auth?.tenantId;
      }
      if (!tenantId) {
        throw badRequest('tenant_required', 'Say which tenant: send X-Tenant-ID, use its subdomain, or sign in to it');
      }
      request.tenant = { tenantId, userId };
      // A stranger naming this tenant gets a 404 further on and spends none of its budget
      // (else anyone could exhaust another organization's limit).
      if (!(await opts.isMember(userId, tenantId))) return;
      const budget = await tenantCounter(request);
      if (!budget.isAllowed && budget.isExceeded) {
        throw new AppError(
          429,
          'tenant_rate_limited',
          `This organization made too many requests; retry in ${budget.ttlInSeconds} s`,
          undefined,
          { 'retry-after': String(budget.ttlInSeconds) },
        );
      }
    });
  },
  { name: 'quire-tenant-resolution', dependencies: ['quire-authentication'] },
);
