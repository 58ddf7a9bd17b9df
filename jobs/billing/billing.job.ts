import { z } from 'zod';
import { publishAccessChange } from '../../lib/channels.js';
import { customersToBill } from '../../db/repositories/usage-records.js';
import { defineJob } from '../define-job.js';
import { RetryLaterError } from '../errors.js';
import { billCustomer, type BillCustomerOptions, type CustomerBilling } from './bill-customer.js';
import { billingMetricsHook } from './billing-metrics.hook.js';
import type { EscrowAdapter } from './escrow/escrow.js';
import { postgresEscrow } from './escrow/postgres-escrow.js';

export const billingPayloadSchema = z.strictObject({});

export const billingResultSchema = z.object({
  customers: z.number().int(),
  charged: z.number().int(),
  charged_usd_cents: z.number().int(),
  suspended: z.array(z.object({ customer_id: z.string(), reason: z.string(), due_usd_cents: z.number().int() })),
  resumed: z.array(z.string()),
});
export type BillingResult = z.infer<typeof billingResultSchema>;

export interface BillingJobOptions {
  /** Where charges go. Default: the PostgreSQL ledger. */
  escrow?: EscrowAdapter;
  /** Test seam, see BillCustomerOptions.afterCommit. */
  afterCommit?: BillCustomerOptions['afterCommit'];
}

function summarise(outcomes: CustomerBilling[]): BillingResult {
  const charged = outcomes.filter((o): o is Extract<CustomerBilling, { outcome: 'charged' }> => o.outcome === 'charged');
  return {
    customers: new Set(outcomes.map((o) => o.customerId)).size,
    charged: charged.length,
    charged_usd_cents: charged.reduce((sum, o) => sum + o.amountUsdCents, 0),
    suspended: outcomes.flatMap((o) =>
      o.outcome === 'suspended' ? [{ customer_id: o.customerId, reason: o.reason, due_usd_cents: o.dueUsdCents }] : [],
    ),
    resumed: outcomes.filter((o) => o.outcome === 'charged' && o.accessChanged).map((o) => o.customerId),
  };
}

/** The billing job type; tests build one with a faulty escrow. */
export function createBillingJob(options: BillingJobOptions = {}) {
  return defineJob({
    name: 'billing',
    description:
      'Price unbilled usage records by tier and service type, check balance and monthly limit, charge the escrow ledger once per customer (suspending on failure).',
    payload: billingPayloadSchema,
    result: billingResultSchema,
    adminOnly: true,
    // One run per worker process at a time; runs in other processes are safe too (see billCustomer).
    queue: { attempts: 5, backoffMs: 10_000, concurrency: 1 },
    hooks: [billingMetricsHook],
    schedule: (config) => ({ every: config.billingEveryMs }),
    async process(_payload, ctx) {
      const billOptions: BillCustomerOptions = {
        escrow: options.escrow ?? postgresEscrow,
        escrowTimeoutMs: ctx.config.escrowTimeoutMs,
        afterCommit: options.afterCommit,
      };
      const outcomes: CustomerBilling[] = [];
      const failures: string[] = [];
      const customers = await customersToBill(ctx.em);
      for (const customerId of customers) {
        if (ctx.signal.aborted) break;
        try {
          const billed = await billCustomer(ctx.em, customerId, billOptions);
          outcomes.push(...billed);
          if (billed.some((outcome) => outcome.accessChanged)) await publishAccessChange(ctx.redis, ctx.config.queuePrefix, customerId);
        } catch (error) {
          ctx.logger.warn({ err: error, customerId }, 'billing a customer failed; its usage stays unbilled for the next attempt');
          failures.push(`${customerId}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      const result = summarise(outcomes);
      ctx.logger.info({ ...result, failed: failures.length }, 'billing run finished');
      // Everything that succeeded is committed; retrying bills only what is left.
      if (failures.length > 0)
        throw new RetryLaterError(`${failures.length} of ${customers.length} customers not billed: ${failures.slice(0, 5).join('; ')}`);
      return result;
    },
  });
}

export const billingJob = createBillingJob();
