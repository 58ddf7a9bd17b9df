import { Router } from 'express';
import { z } from 'zod';
import type { Tier } from '../../db/entities/service-instance.entity.js';
import { listServiceInstances, type ServiceInstanceRow } from '../../db/repositories/service-instances.js';
import { changeService } from '../../jobs/billing/account-operations.js';
import { isKnownServiceType, serviceTypes, tierPrice, tierRateLimitPerMinute, tiers } from '../../jobs/billing/pricing.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { notFound, ProblemError } from '../problems.js';
import { parseInput } from '../validate.js';

export const putServiceBody = z.strictObject({ tier: z.enum(tiers), enabled: z.boolean() });
/** A service type's shape (the pricing table's keys, e.g. `compute`); a well-formed unknown one answers 404. */
export const serviceParams = z.object({
  service_type: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
      `must be 1–64 letters, digits, ".", "_" or "-" (a service type, one of: ${serviceTypes.join(', ')})`,
    ),
});
export const listQuery = z.strictObject({ ...paginationQuery });

function serviceView(serviceType: string, row: ServiceInstanceRow | undefined) {
  const tier: Tier = row?.tier ?? 'starter';
  const price = tierPrice(serviceType, tier);
  const enabled = row?.enabled ?? false;
  const suspendedReason = row?.suspendedReason ?? null;
  return {
    service_type: serviceType,
    tier,
    enabled,
    state: !enabled ? 'disabled' : suspendedReason ? 'suspended' : 'active',
    suspended_reason: suspendedReason,
    rate_limit_per_minute: tierRateLimitPerMinute[tier],
    pricing: {
      request_micro_usd_cents: Number(price.requestMicroCents),
      gigabyte_micro_usd_cents: Number(price.gigabyteMicroCents),
      estimated_usd_cents: price.estimatedUsdCents,
    },
    updated_at: row ? new Date(row.updatedAt).toISOString() : null,
  };
}

/**
 * Services and tiers (SPEC §5, seed phase 11): every known service type with the customer's tier and state.
 * Enabling or upgrading passes `validateOperation` or answers 402 with its figures.
 */
export function servicesRoutes(deps: ApiDeps): Router {
  const router = Router();

  router.get('/services', async (req, res) => {
    const { customerId } = principalOf(req);
    const query = parseInput(listQuery, req.query, 'query');
    const after = decodeCursor(query.cursor, z.string().max(64));
    const rows = new Map((await listServiceInstances(deps.orm.em.fork(), customerId)).map((row) => [row.serviceType, row]));
    const names = [...serviceTypes].sort().filter((name) => after === undefined || name > after);
    res.json(
      page(
        names,
        query.limit,
        (name) => serviceView(name, rows.get(name)),
        (name) => name,
      ),
    );
  });

  router.put('/services/:service_type', async (req, res) => {
    const principal = principalOf(req);
    const { service_type: serviceType } = parseInput(serviceParams, req.params, 'params');
    if (!isKnownServiceType(serviceType)) throw notFound(`service type ${serviceType}`);
    if (!principal.userId) throw new ProblemError('forbidden', 'changing a service needs a user access token, not an API key');
    const body = parseInput(putServiceBody, req.body, 'body');
    const change = await changeService(deps.orm.em.fork(), principal.customerId, serviceType, body);
    if (!change.allowed) {
      const detail =
        change.reason === 'insufficient_balance'
          ? `the balance does not cover the estimated cost of ${serviceType} at tier ${body.tier}; deposit at least ${change.details.required_deposit_usd_cents} cents`
          : `the estimated cost of ${serviceType} at tier ${body.tier} would exceed the monthly limit`;
      throw new ProblemError('payment-required', detail, {
        reason: change.reason,
        service_type: serviceType,
        tier: body.tier,
        ...change.details,
      });
    }
    await deps.principals.invalidateCustomer(principal.customerId);
    res.json(serviceView(serviceType, change.service));
  });

  return router;
}
