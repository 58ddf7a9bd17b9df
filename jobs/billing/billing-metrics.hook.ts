import type { JobTypeHook } from '../define-job.js';
import { billingChargedCents, billingCharges } from '../../lib/metrics/catalog.js';
import type { BillingResult } from './billing.job.js';

/**
 * Billing totals from each billing run's result. The run's summary is per customer, not per service, so
 * the cents carry `service_type="all", tier="all"`.
 */
export const billingMetricsHook: JobTypeHook<BillingResult> = {
  name: 'billing-metrics',
  finished(outcome) {
    if (outcome.state !== 'completed') return;
    const result = outcome.result;
    billingChargedCents.inc({ service_type: 'all', tier: 'all' }, result.charged_usd_cents);
    billingCharges.inc({ outcome: 'charged' }, result.charged);
    for (const suspension of result.suspended) {
      billingCharges.inc({ outcome: suspension.reason === 'monthly_limit_exceeded' ? 'monthly_limit_exceeded' : 'insufficient_balance' });
    }
  },
};
