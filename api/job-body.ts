import { z } from 'zod';
import { atMost } from '../jobs/input-limits.js';
import { jobTypeNames } from '../jobs/registry.js';
import { webhookUrlSchema } from './webhook-target.js';

/** The body of `POST /jobs`, and each job of `POST /jobs/bulk` (api/bulk-jobs.ts) besides its idempotency key. */
export const submitJobBody = z.strictObject({
  type: z.enum(jobTypeNames),
  payload: z.unknown().default({}),
  /** BullMQ priority: 1 is the most urgent; omitted = FIFO. */
  priority: z.number().int().min(1).max(2_097_152).optional(),
  delay_ms: atMost(z.number().int().min(0), 365 * 24 * 3600 * 1000).optional(),
  attempts: atMost(z.number().int().min(1), 25).optional(),
  webhook_url: webhookUrlSchema.optional(),
});

/** The substrate a job's payload names (invoke, divide), which the caller must own. */
export function substrateOf(payload: unknown): string | undefined {
  const id = (payload as { substrate_id?: unknown } | null)?.substrate_id;
  return typeof id === 'string' ? id : undefined;
}
