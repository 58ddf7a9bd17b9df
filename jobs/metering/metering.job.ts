import { z } from 'zod';
import { meterNextBatch, type MeterBatchOptions } from '../../db/repositories/metering.js';
import { defineJob } from '../define-job.js';

export const meteringPayloadSchema = z.strictObject({});

export const meteringResultSchema = z.object({
  batches: z.number().int(),
  rows: z.number().int(),
  records: z.number().int(),
  watermark: z.string(),
});
export type MeteringResult = z.infer<typeof meteringResultSchema>;

export interface MeteringJobOptions {
  /** Request logs counted per transaction. Default 10,000. */
  batchSize?: number;
  /** Test seam: runs inside each batch's transaction before commit; a throw rolls that batch back (a crash mid-run). */
  beforeCommit?: MeterBatchOptions['beforeCommit'];
}

/** The metering job type; tests build one with a small batch or an injected crash. */
export function createMeteringJob(options: MeteringJobOptions = {}) {
  const batchSize = options.batchSize ?? 10_000;
  return defineJob({
    name: 'metering',
    description: 'Aggregate request logs past the committed watermark into hourly usage records, each log row exactly once.',
    payload: meteringPayloadSchema,
    result: meteringResultSchema,
    adminOnly: true,
    queue: { attempts: 5, backoffMs: 5_000, concurrency: 1 },
    schedule: (config) => ({ every: config.meteringEveryMs }),
    async process(_payload, ctx) {
      const result: MeteringResult = { batches: 0, rows: 0, records: 0, watermark: '0' };
      // Batch after batch, each its own transaction, until the watermark reaches the newest row. An abort
      // stops between batches; what is committed stays counted and the next run goes on from there.
      while (!ctx.signal.aborted) {
        const batch = await meterNextBatch(ctx.em, { batchSize, beforeCommit: options.beforeCommit });
        if (!batch) break;
        result.batches += 1;
        result.rows += batch.rows;
        result.records += batch.records;
        result.watermark = batch.toId;
        await ctx.progress({ rows: result.rows, watermark: result.watermark });
      }
      ctx.logger.info(result, 'metering run finished');
      return result;
    },
  });
}

export const meteringJob = createMeteringJob();
