import { z } from 'zod';
import type { BatchItem } from '../../db/entities/batch-item.entity.js';
import { batchItemCounts, insertBatchItems, storedItemIndexes, substrateDefinitions } from '../../db/repositories/batches.js';
import type { SubstrateDefinition } from '../../db/repositories/substrates.js';
import type { JobContext } from '../context.js';
import { defineJob } from '../define-job.js';
import { atMostItems } from '../input-limits.js';
import { storableText } from '../storable-text.js';
import { ResultTooLargeError, oversizedJsonBytes } from '../result-limit.js';
import type { EvaluateInput, Evaluation } from '../invoke/evaluate.task.js';
import { evaluateManyTask, parametersSchema, substrateIdSchema } from '../invoke/invoke.job.js';
import { eachAtMost } from '../../lib/each-at-most.js';

/** Most invocations one batch may carry. */
export const maxBatchSize = 10_000;
/** Invocations evaluated per Piscina task: one thread round trip and one INSERT per chunk. */
export const chunkSize = 250;
/**
 * Chunks of one batch evaluated at once. A chunk's results stay in the worker's memory until it is stored, up
 * to RESULT_MAX_BYTES each: with every chunk of a 10,000-item batch started together, one batch of ~1 MB
 * results held ~10 GB and killed the worker (heap limit), and again after each restart. Four keep the pool's
 * threads busy while a chunk is being stored.
 */
export const chunksAtOnce = 4;

export const batchPayloadSchema = z.strictObject({
  invocations: atMostItems(
    z.array(z.strictObject({ substrate_id: substrateIdSchema, parameters: parametersSchema.optional() })).min(1),
    maxBatchSize,
    'invocations',
  ),
});
export type BatchPayload = z.infer<typeof batchPayloadSchema>;

export const batchResultSchema = z.object({ batch_id: z.string(), total: z.number(), completed: z.number(), failed: z.number() });

type ItemOutcome = Omit<BatchItem, 'batchId'>;

interface PendingItem {
  index: number;
  substrate: SubstrateDefinition;
  parameters: Record<string, unknown>;
}

/** An item's stored outcome; a value over RESULT_MAX_BYTES (`limitBytes`) fails the item alone, with `result_too_large`. */
function outcome(item: { index: number; substrateId: string }, evaluation: Evaluation, limitBytes: number): ItemOutcome {
  if ('error' in evaluation)
    return { index: item.index, substrateId: item.substrateId, state: 'failed', result: null, error: storableText(evaluation.error) };
  const oversized = oversizedJsonBytes(evaluation.value, limitBytes);
  if (oversized !== null)
    return {
      index: item.index,
      substrateId: item.substrateId,
      state: 'failed',
      result: null,
      error: new ResultTooLargeError(oversized, limitBytes).message,
    };
  return { index: item.index, substrateId: item.substrateId, state: 'completed', result: evaluation.value, error: null };
}

/**
 * Evaluates a chunk in one task. The task runner re-runs the items one by one if the task itself dies
 * (time limit, memory), so the one bad invocation fails by itself and the rest still succeed.
 */
function evaluateChunk(chunk: PendingItem[], ctx: JobContext): Promise<Evaluation[]> {
  const inputs: EvaluateInput[] = chunk.map((item) => ({ expression: item.substrate.expression ?? '', parameters: item.parameters }));
  return ctx.runTask(evaluateManyTask, inputs, ctx.signal);
}

/**
 * Fan-out/fan-in inside one job: items are evaluated in chunks spread over the Piscina threads and
 * each chunk's outcomes are stored with one INSERT. Stored items are skipped on a retry, so a crash
 * mid-batch resumes where it stopped and no item is evaluated into the results twice.
 */
export const batchJob = defineJob({
  name: 'batch',
  description: 'Evaluate up to 10,000 invocations; each item succeeds or fails on its own.',
  payload: batchPayloadSchema,
  result: batchResultSchema,
  queue: { attempts: 5, concurrency: 4, sharded: true },
  activeAtStart: true,
  tasks: [evaluateManyTask],
  completionEvents: ['batch.completed'],
  substrateIds: (payload) => [...new Set(payload.invocations.map((invocation) => invocation.substrate_id))],
  workItems: (payload) => payload.invocations.length,
  async process(payload, ctx) {
    const total = payload.invocations.length;
    const limitBytes = ctx.config.resultMaxBytes;
    const stored = await storedItemIndexes(ctx.em, ctx.jobId);
    const definitions = await substrateDefinitions(ctx.em, ctx.customerId, [...new Set(payload.invocations.map((i) => i.substrate_id))]);

    const immediate: ItemOutcome[] = [];
    const pending: PendingItem[] = [];
    payload.invocations.forEach((invocation, index) => {
      if (stored.has(index)) return;
      const substrate = definitions.get(invocation.substrate_id);
      const item = { index, substrateId: invocation.substrate_id };
      if (!substrate) immediate.push(outcome(item, { error: `substrate ${invocation.substrate_id} not found` }, limitBytes));
      else if (substrate.expressionType === 'constant') immediate.push(outcome(item, { value: substrate.value }, limitBytes));
      else pending.push({ index, substrate, parameters: invocation.parameters ?? {} });
    });
    await insertBatchItems(ctx.em, ctx.jobId, immediate);

    let done = stored.size + immediate.length;
    const chunks: PendingItem[][] = [];
    for (let i = 0; i < pending.length; i += chunkSize) chunks.push(pending.slice(i, i + chunkSize));
    // Each chunk's results are held until it is stored: `chunksAtOnce` at a time.
    await eachAtMost(chunksAtOnce, chunks, async (chunk) => {
      const evaluations = await evaluateChunk(chunk, ctx);
      await insertBatchItems(
        ctx.em.fork(),
        ctx.jobId,
        chunk.map((item, i) =>
          outcome({ index: item.index, substrateId: item.substrate.id }, evaluations[i] ?? { error: 'no result' }, limitBytes),
        ),
      );
      done += chunk.length;
      await ctx.progress({ done, total });
    });

    return { batch_id: ctx.jobId, total, ...(await batchItemCounts(ctx.em, ctx.jobId)) };
  },
});
