import { z } from 'zod';
import { publishAccessChange } from '../../lib/channels.js';
import { rollOverMonths } from '../../db/repositories/ledger.js';
import { customersBlockedFor } from '../../db/repositories/service-instances.js';
import { reviewBillingBlock } from '../billing/review-block.js';
import { defineJob } from '../define-job.js';
import { inTransaction } from '../../db/transaction.js';

export const monthRolloverPayloadSchema = z.strictObject({});

export const monthRolloverResultSchema = z.object({
  accounts_rolled_over: z.number().int(),
  resumed: z.array(z.string()),
});

/** Serialises rollovers, so two at once cannot deadlock on the accounts they both update. */
const rolloverLock = 4_120_731_002;

export const monthRolloverJob = defineJob({
  name: 'month-rollover',
  description:
    "Start a new spend month (1st, 00:00 UTC): this month's charges become last month's, and services suspended for the monthly limit resume.",
  payload: monthRolloverPayloadSchema,
  result: monthRolloverResultSchema,
  adminOnly: true,
  queue: { attempts: 5, backoffMs: 30_000, concurrency: 1 },
  schedule: (config) => ({ pattern: config.monthRolloverCron, tz: 'UTC' }),
  async process(_payload, ctx) {
    // Idempotent: accounts already in this month are left alone. Billing rolls an account's month too when
    // it meets one first, so this job's own work is lifting the monthly-limit suspensions the new month ends.
    const rolled = await inTransaction(ctx.em, async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(?)', [rolloverLock]);
      return rollOverMonths(tx);
    });
    const resumed: string[] = [];
    for (const customerId of await customersBlockedFor(ctx.em, 'monthly_limit_exceeded')) {
      const review = await inTransaction(ctx.em, (tx) => reviewBillingBlock(tx, customerId));
      if (!review.changed) continue;
      if (review.after === null) resumed.push(customerId);
      await publishAccessChange(ctx.redis, ctx.config.queuePrefix, customerId);
    }
    ctx.logger.info({ accounts: rolled.length, resumed: resumed.length }, 'month rolled over');
    return { accounts_rolled_over: rolled.length, resumed };
  },
});
