import { z } from 'zod';
import { tiers } from '../../jobs/billing/pricing.js';
import { depositBody, limitsBody, listQuery, usageQuery } from '../routes/billing.routes.js';
import { listQuery as servicesQuery, putServiceBody, serviceParams } from '../routes/services.routes.js';
import { documentRoute, ex, exampleOf, json, jsonBody, pageOf, timestamp, type RouteDocs } from './document-route.js';

const cents = z.int().describe('US cents');

export const balanceSchema = z
  .object({
    balance_usd_cents: cents,
    outstanding_usd_cents: cents,
    current_month_charged_usd_cents: cents,
    last_month_charged_usd_cents: cents,
    current_month_start: z.string(),
    max_monthly_usd_cents: cents.nullable().describe('Null: no monthly limit'),
    suspended_reason: z.string().nullable(),
  })
  .meta({
    id: 'Balance',
    example: {
      balance_usd_cents: 4_250,
      outstanding_usd_cents: 0,
      current_month_charged_usd_cents: 750,
      last_month_charged_usd_cents: 1_920,
      current_month_start: '2026-12-01T00:00:00.000Z',
      max_monthly_usd_cents: 10_000,
      suspended_reason: null,
    },
  });

export const transactionSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(['deposit', 'charge', 'credit']).describe('`credit`: given by an admin (`reason` says why)'),
    amount_usd_cents: cents,
    reason: z.string().nullable().describe('Why an admin credited the account; null for deposits and charges'),
    tx_digest: z.string().nullable(),
    created_at: timestamp,
  })
  .meta({
    id: 'LedgerTransaction',
    example: {
      id: ex.transactionId,
      type: 'deposit',
      amount_usd_cents: 5_000,
      reason: null,
      tx_digest: '0xa8a8d783cfa6084c1423198c6f95593d72f9420693e82bc92ba807dfd678e9ea',
      created_at: ex.at,
    },
  });

export const usageRecordSchema = z
  .object({
    id: z.string(),
    service_type: z.string(),
    window_start: timestamp,
    window_end: timestamp,
    request_count: z.int(),
    bytes_transferred: z.number(),
    charged_usd_cents: cents,
  })
  .meta({
    id: 'UsageRecord',
    example: {
      id: '48213',
      service_type: 'compute',
      window_start: '2026-12-03T17:00:00.000Z',
      window_end: '2026-12-03T18:00:00.000Z',
      request_count: 1_204,
      bytes_transferred: 3_481_920,
      charged_usd_cents: 12,
    },
  });

export const serviceSchema = z
  .object({
    service_type: z.string(),
    tier: z.enum(tiers),
    enabled: z.boolean(),
    state: z.enum(['active', 'suspended', 'disabled']),
    suspended_reason: z.string().nullable(),
    rate_limit_per_minute: z.int().nullable().describe('Null: unlimited'),
    pricing: z.object({ request_micro_usd_cents: z.number(), gigabyte_micro_usd_cents: z.number(), estimated_usd_cents: z.number() }),
    updated_at: timestamp.nullable(),
  })
  .meta({
    id: 'Service',
    example: {
      service_type: 'compute',
      tier: 'pro',
      enabled: true,
      state: 'active',
      suspended_reason: null,
      rate_limit_per_minute: 1_000,
      pricing: { request_micro_usd_cents: 10_000, gigabyte_micro_usd_cents: 5_000_000, estimated_usd_cents: 12 },
      updated_at: ex.at,
    },
  });

const depositExample = {
  transaction: exampleOf(transactionSchema),
  balance_usd_cents: 9_250,
  suspended_reason: null,
  services_resumed: false,
};

/** billing.routes.ts: reachable while suspended (paying ends a suspension), rate-limited per customer. */
export const billingDocs: RouteDocs = (registry) => {
  const tag = 'Billing';
  const auth = 'account';
  documentRoute(registry, {
    tag,
    auth,
    method: 'get',
    path: '/billing/balance',
    summary: 'Balance, charges this month and the monthly limit',
    responses: { 200: json(balanceSchema, 'The balance') },
    problems: [429],
  });
  documentRoute(registry, {
    tag,
    auth,
    method: 'get',
    path: '/billing/usage',
    summary: 'Metered usage windows, newest first',
    request: { query: usageQuery },
    responses: { 200: json(pageOf(usageRecordSchema), 'A page of usage records') },
    problems: [422, 429],
  });
  documentRoute(registry, {
    tag,
    auth,
    method: 'get',
    path: '/billing/transactions',
    summary: 'Ledger transactions, newest first',
    request: { query: listQuery },
    responses: { 200: json(pageOf(transactionSchema), 'A page of transactions') },
    problems: [429],
  });
  documentRoute(registry, {
    tag,
    auth,
    method: 'post',
    path: '/billing/deposits',
    summary: 'Deposit money (a signed-in user; `Idempotency-Key` makes a retry safe)',
    description:
      'The balance is credited only once the escrow adapter confirms the payment (`ESCROW_DEPOSITS`): the development adapter, the default outside production, confirms at once; ' +
      'with none configured (the production default) every deposit answers 403, and an admin credits the account instead (`POST /admin/customers/{id}/credits`). ' +
      'A payment the adapter cannot confirm answers 402 (`reason: deposit_not_confirmed`).',
    request: {
      headers: z.object({ 'idempotency-key': z.string().max(255).optional() }),
      body: jsonBody(depositBody, { amount_usd_cents: 5_000 }),
    },
    responses: {
      201: json(
        z
          .object({
            transaction: transactionSchema,
            balance_usd_cents: cents,
            suspended_reason: z.string().nullable(),
            services_resumed: z.boolean(),
          })
          .meta({ id: 'Deposit', example: depositExample }),
        'Deposited',
      ),
      200: json(z.object({}).passthrough(), 'The same Idempotency-Key: the first deposit, again', undefined, depositExample),
    },
    problems: [402, 422, 429],
  });
  documentRoute(registry, {
    tag,
    auth,
    method: 'patch',
    path: '/billing/limits',
    summary: 'Set (or clear, with null) the monthly spending limit',
    request: { body: jsonBody(limitsBody, { max_monthly_usd_cents: 10_000 }) },
    responses: { 200: json(balanceSchema, 'The balance with the new limit') },
    problems: [422, 429],
  });
};

/** services.routes.ts */
export const servicesDocs: RouteDocs = (registry) => {
  const tag = 'Billing';
  documentRoute(registry, {
    tag,
    auth: 'account',
    method: 'get',
    path: '/services',
    summary: 'Every service type with the caller’s tier and state',
    request: { query: servicesQuery },
    responses: { 200: json(pageOf(serviceSchema), 'A page of services') },
    problems: [429],
  });
  documentRoute(registry, {
    tag,
    auth: 'account',
    method: 'put',
    path: '/services/:service_type',
    summary: 'Change tier or enable/disable a service',
    description:
      'Enabling or upgrading answers 402 (`insufficient_balance` or `monthly_limit_exceeded`, with the figures) when the balance or limit does not allow it.',
    request: { params: serviceParams, body: jsonBody(putServiceBody, { tier: 'pro', enabled: true }) },
    responses: { 200: json(serviceSchema, 'The service') },
    problems: [402, 404, 429],
  });
};
