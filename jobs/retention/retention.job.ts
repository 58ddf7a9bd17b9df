import { z } from 'zod';
import { expireJobsStep, jobScanBound, retentionScanBound } from '../../db/jobs/expire-jobs.js';
import { dropExpiredJobPartitions, ensureJobPartitions } from '../../db/jobs/job-partitions.js';
import { expireRefreshTokensStep } from '../../db/repositories/accounts.js';
import { meteringWatermark } from '../../db/repositories/metering.js';
import { expireRequestLogsStep } from '../../db/repositories/request-logs.js';
import { expireDeliveriesStep } from '../../db/repositories/webhook-deliveries.js';
import { defineJob } from '../define-job.js';

export const retentionPayloadSchema = z.strictObject({});

export const retentionResultSchema = z.object({
  jobs: z.number().int(),
  batch_items: z.number().int(),
  request_logs: z.number().int(),
  webhook_deliveries: z.number().int(),
  webhook_attempts: z.number().int(),
  /** Refresh tokens past their expiry (rotated, revoked or unused), which no one can use any more. */
  refresh_tokens: z.number().int(),
  /** Idempotency keys removed with their jobs (a key lives as long as its job). */
  idempotency_keys: z.number().int(),
  /** Partitions of `jobs` (each with its `batch_items` twin) dropped whole, and created ahead. */
  job_partitions_dropped: z.number().int(),
  job_partitions_created: z.number().int(),
  /** Statements that read or deleted a step's rows (each at most RETENTION_STEP_ROWS rows). */
  steps: z.number().int(),
});
export type RetentionResult = z.infer<typeof retentionResultSchema>;

export interface RetentionJobOptions {
  /** Rows read or deleted per statement. Default: RETENTION_STEP_ROWS. */
  stepRows?: number;
  /** The clock the scans' id bounds come from (the cutoffs themselves are the database's `now()`). Default: now. */
  now?: () => Date;
}

/**
 * The retention job type (SPEC §9). Creates the coming partitions of `jobs` and `batch_items`, drops whole
 * partitions past the longest tier's JOB_RETENTION_DAYS that hold only expired jobs, then deletes, in steps of RETENTION_STEP_ROWS rows each its own short
 * statement, finished jobs (with a batch's items) JOB_RETENTION_DAYS after they finished (per tier:
 * JOB_RETENTION_DAYS_BY_TIER), request logs REQUEST_LOG_RETENTION_DAYS old once metered and billed, and
 * finished webhook deliveries with their attempts WEBHOOK_RETENTION_DAYS after they finished, and refresh tokens once
 * they expire. Never an
 * unfinished job, a pending delivery, a usage record, a charge or a ledger entry. An abort stops between
 * steps; whatever was deleted stays deleted and the next run goes on.
 */
export function createRetentionJob(options: RetentionJobOptions = {}) {
  return defineJob({
    name: 'retention',
    description:
      'Delete history past its retention: finished jobs and their batch items, metered and billed request logs, finished webhook deliveries and their attempts, expired refresh tokens.',
    payload: retentionPayloadSchema,
    result: retentionResultSchema,
    adminOnly: true,
    queue: { attempts: 3, backoffMs: 60_000, concurrency: 1 },
    schedule: (config) => ({ every: config.retentionEveryMs }),
    async process(_payload, ctx) {
      const { config, em, signal } = ctx;
      const stepRows = options.stepRows ?? config.retentionStepRows;
      const now = options.now?.() ?? new Date();
      const result: RetentionResult = {
        jobs: 0,
        batch_items: 0,
        request_logs: 0,
        webhook_deliveries: 0,
        webhook_attempts: 0,
        refresh_tokens: 0,
        idempotency_keys: 0,
        job_partitions_dropped: 0,
        job_partitions_created: 0,
        steps: 0,
      };

      const daySeconds = config.retentionDaySeconds;
      const created = await ensureJobPartitions(em, { partitionDays: config.jobPartitionDays, daySeconds, now });
      result.job_partitions_created = created.length;
      // Whole partitions go once past the longest retention of any tier; with a tier that keeps its jobs, none do.
      const tierDays = Object.values(config.jobRetentionDays);
      if (tierDays.every((days) => days > 0) && !signal.aborted) {
        const dropped = await dropExpiredJobPartitions(em, { days: Math.max(...tierDays), daySeconds, stepRows, now });
        result.job_partitions_dropped = dropped.dropped.length;
        result.jobs += dropped.jobs;
        result.batch_items += dropped.batchItems;
        result.idempotency_keys += dropped.idempotencyKeys;
      }
      const jobBound = jobScanBound(config.jobRetentionDays, now, daySeconds);
      for (let afterId: string | null = null; jobBound && !signal.aborted;) {
        const step = await expireJobsStep(em, { afterId, bound: jobBound, days: config.jobRetentionDays, stepRows, daySeconds });
        result.steps += 1;
        result.jobs += step.jobs;
        result.batch_items += step.batchItems;
        result.idempotency_keys += step.idempotencyKeys;
        if (step.lastId === null) break;
        afterId = step.lastId;
      }

      if (config.requestLogRetentionDays > 0) {
        const meteredUpTo = await meteringWatermark(em);
        for (let afterId: string | null = null; !signal.aborted;) {
          const step = await expireRequestLogsStep(em, {
            afterId,
            meteredUpTo,
            days: config.requestLogRetentionDays,
            stepRows,
            daySeconds,
          });
          result.steps += 1;
          result.request_logs += step.deleted;
          if (step.done) break;
          afterId = step.lastId;
        }
      }

      if (config.webhookRetentionDays > 0) {
        const bound = retentionScanBound(config.webhookRetentionDays, now, daySeconds);
        for (let afterId: string | null = null; !signal.aborted;) {
          const step = await expireDeliveriesStep(em, { afterId, bound, days: config.webhookRetentionDays, stepRows, daySeconds });
          result.steps += 1;
          result.webhook_deliveries += step.deliveries;
          result.webhook_attempts += step.attempts;
          if (step.lastId === null) break;
          afterId = step.lastId;
        }
      }

      // Every login and refresh stores a token (rate-limited per address, not per account): without this the table only grows.
      for (let afterId: string | null = null; !signal.aborted;) {
        const step = await expireRefreshTokensStep(em, { afterId, stepRows });
        result.steps += 1;
        result.refresh_tokens += step.deleted;
        if (step.done) break;
        afterId = step.lastId;
      }

      await ctx.progress({ ...result });
      ctx.logger.info(result, 'retention run finished');
      return result;
    },
  });
}

export const retentionJob = createRetentionJob();
