import { z } from 'zod';
import type { BatchItem } from '../../db/entities/batch-item.entity.js';
import {
  batchItemCounts,
  insertBatchItems,
  storedItemIndexes,
  storedResultBytes,
  substrateDefinitions,
} from '../../db/repositories/batches.js';
import type { SubstrateDefinition } from '../../db/repositories/substrates.js';
import type { JobContext } from '../context.js';
import { defineJob } from '../define-job.js';
import { atMostItems } from '../input-limits.js';
import { storableText } from '../storable-text.js';
import { ResultTooLargeError, jsonBytes, resultTooLargeCode } from '../result-limit.js';
import type { EvaluateInput, Evaluation } from '../invoke/evaluate.task.js';
import { evaluateManyTask, parametersSchema, substrateIdSchema } from '../invoke/invoke.job.js';
import { eachAtMost } from '../../lib/each-at-most.js';

/** Most invocations one batch may carry. */
export const maxBatchSize = 10_000;
/** Invocations evaluated per Piscina task: one thread round trip and one INSERT per chunk. */
export const chunkSize = 250;
/**
 * Chunks of one batch evaluated at once: enough to keep the pool's threads busy while a chunk is being
 * stored. A chunk's results are held until stored; the task runner answers at most a few MiB of them at a
 * time (the rest when asked again), so a batch of large results holds about `chunksAtOnce` times that.
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

/**
 * What a batch may still store of its items' results (BATCH_RESULTS_MAX_BYTES), charged item by item as
 * their outcomes are made (synchronously, so chunks finishing together never both spend the last bytes).
 */
class ResultsBudget {
  constructor(
    readonly limitBytes: number,
    private spentBytes: number,
  ) {}

  /** Set by the first result that did not fit: no later one is stored, however small. */
  private exhausted = false;

  get spent(): boolean {
    return this.exhausted || this.spentBytes >= this.limitBytes;
  }

  /** Charges `bytes`; false, charging nothing, when they do not fit (or an earlier result did not). */
  take(bytes: number): boolean {
    if (this.exhausted || this.spentBytes + bytes > this.limitBytes) {
      this.exhausted = true;
      return false;
    }
    this.spentBytes += bytes;
    return true;
  }

  get error(): string {
    return `${resultTooLargeCode}: the batch's results reached the BATCH_RESULTS_MAX_BYTES limit of ${this.limitBytes} bytes before this item's`;
  }
}

interface ResultLimits {
  /** RESULT_MAX_BYTES: one item's result. */
  itemBytes: number;
  batch: ResultsBudget;
}

type Item = { index: number; substrateId: string };

const failedItem = (item: Item, error: string): ItemOutcome => ({ ...item, state: 'failed', result: null, error });

/**
 * An item's stored outcome. A value over RESULT_MAX_BYTES fails the item alone, and so does every value once
 * the batch's results have reached BATCH_RESULTS_MAX_BYTES, both with `result_too_large`.
 */
function outcome(item: Item, evaluation: Evaluation, limits: ResultLimits): ItemOutcome {
  if ('error' in evaluation) return failedItem(item, storableText(evaluation.error));
  if (limits.batch.spent) return failedItem(item, limits.batch.error);
  // Encoded once, for both limits (an evaluated item over RESULT_MAX_BYTES was already dropped in its thread).
  const bytes = jsonBytes(evaluation.value);
  if (bytes > limits.itemBytes) return failedItem(item, new ResultTooLargeError(bytes, limits.itemBytes).message);
  if (!limits.batch.take(bytes)) return failedItem(item, limits.batch.error);
  return { ...item, state: 'completed', result: evaluation.value, error: null };
}

/**
 * Evaluates a chunk in one task. The task runner re-runs the items one by one if the task itself dies
 * (time limit, memory), so the one bad invocation fails by itself and the rest still succeed. When the
 * chunk's results are large the runner answers part of it (the items it did not get to are undefined).
 */
function evaluateChunk(chunk: PendingItem[], ctx: JobContext): Promise<Array<Evaluation | undefined>> {
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
    const stored = await storedItemIndexes(ctx.em, ctx.jobId);
    // A batch run again (a retry after a crash) has spent what its stored items hold.
    const spentBytes = stored.size > 0 ? await storedResultBytes(ctx.em, ctx.jobId) : 0;
    const limits: ResultLimits = {
      itemBytes: ctx.config.resultMaxBytes,
      batch: new ResultsBudget(ctx.config.batchResultsMaxBytes, spentBytes),
    };
    const definitions = await substrateDefinitions(ctx.em, ctx.customerId, [...new Set(payload.invocations.map((i) => i.substrate_id))]);

    const immediate: ItemOutcome[] = [];
    const pending: PendingItem[] = [];
    payload.invocations.forEach((invocation, index) => {
      if (stored.has(index)) return;
      const substrate = definitions.get(invocation.substrate_id);
      const item = { index, substrateId: invocation.substrate_id };
      if (!substrate) immediate.push(outcome(item, { error: `substrate ${invocation.substrate_id} not found` }, limits));
      else if (substrate.expressionType === 'constant') immediate.push(outcome(item, { value: substrate.value }, limits));
      else pending.push({ index, substrate, parameters: invocation.parameters ?? {} });
    });
    await insertBatchItems(ctx.em, ctx.jobId, immediate);

    let done = stored.size + immediate.length;
    const chunks: PendingItem[][] = [];
    for (let i = 0; i < pending.length; i += chunkSize) chunks.push(pending.slice(i, i + chunkSize));
    // Each chunk's results are held until it is stored: `chunksAtOnce` at a time.
    const itemOf = (pendingItem: PendingItem): Item => ({ index: pendingItem.index, substrateId: pendingItem.substrate.id });
    await eachAtMost(chunksAtOnce, chunks, async (chunk) => {
      // Large results come back a part at a time: each part is stored before the rest is evaluated.
      for (let rest = chunk; rest.length > 0;) {
        let outcomes: ItemOutcome[];
        if (limits.batch.spent) {
          // The batch's results are spent: the items left fail without being evaluated.
          outcomes = rest.map((pendingItem) => failedItem(itemOf(pendingItem), limits.batch.error));
          rest = [];
        } else {
          const evaluations = await evaluateChunk(rest, ctx);
          outcomes = rest.flatMap((pendingItem, i) => {
            const evaluation = evaluations[i];
            return evaluation ? [outcome(itemOf(pendingItem), evaluation, limits)] : [];
          });
          if (outcomes.length === 0) throw new Error('the task runner answered none of the items of a chunk');
          rest = rest.filter((_, i) => evaluations[i] === undefined);
        }
        await insertBatchItems(ctx.em.fork(), ctx.jobId, outcomes);
        done += outcomes.length;
        await ctx.progress({ done, total });
      }
    });

    return { batch_id: ctx.jobId, total, ...(await batchItemCounts(ctx.em, ctx.jobId)) };
  },
});
