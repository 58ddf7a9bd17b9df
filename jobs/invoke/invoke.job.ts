import { z } from 'zod';
import { firstEpoch, type CacheLookup } from '../../db/invocation-cache.js';
import type { SubstrateDefinition } from '../../db/repositories/substrates.js';
import type { JobContext } from '../context.js';
import { defineJob } from '../define-job.js';
import { PermanentJobError } from '../errors.js';
import { atMostJson, atMostKeys } from '../input-limits.js';
import { defineTask } from '../define-task.js';
import type { EvaluateInput, EvaluateOutput, Evaluation } from './evaluate.task.js';
import { applyOperation, multiply, operationSchema } from './operations.js';

/** Parameters are the expression's variables. Capped so one job cannot carry megabytes into a thread. */
export const parametersSchema = atMostJson(
  atMostKeys(
    z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'parameter names are identifiers'), z.unknown()),
    100,
    'parameters',
  ),
  16_384,
  'parameters',
);

export const substrateIdSchema = z.string().regex(/^0x[0-9a-f]{16}$/, 'a substrate id is 0x followed by 16 lowercase hex digits');

export const invokePayloadSchema = z
  .strictObject({
    substrate_id: substrateIdSchema.optional(),
    parameters: parametersSchema.optional(),
    operation: operationSchema.optional(),
  })
  .refine((p) => p.substrate_id !== undefined || p.operation?.op === 'multiply', {
    message: 'substrate_id is required (only the multiply operation works without one)',
    path: ['substrate_id'],
  });
export type InvokePayload = z.infer<typeof invokePayloadSchema>;

export const invokeResultSchema = z.record(z.string(), z.unknown());

/** One CEL evaluation in a pool thread (time limit, heap limit). */
export const evaluateTask = defineTask<EvaluateInput, EvaluateOutput>({
  name: 'evaluate',
  module: import.meta.url,
  file: './evaluate.task',
});

/**
 * Many evaluations in one thread round trip, answered per item; single evaluations that busy jobs start
 * together are sent as one of these (batch runs it directly for its chunks).
 */
export const evaluateManyTask = defineTask<EvaluateInput[], Array<Evaluation | undefined>>({
  name: 'evaluateMany',
  module: import.meta.url,
  file: './evaluate.task',
  exportName: 'evaluateMany',
  perItem: evaluateTask,
  gathersPerItemCalls: true,
});

async function evaluateSubstrate(substrate: SubstrateDefinition, parameters: Record<string, unknown>, ctx: JobContext): Promise<unknown> {
  if (substrate.expressionType === 'constant') return substrate.value;
  const output = await ctx.runTask(evaluateTask, { expression: substrate.expression ?? '', parameters }, ctx.signal);
  return output.value;
}

/**
 * The cached result, or the cache epoch to store the result under, read before the substrate's definition is
 * loaded (a worker may hold that from before a delete), so a delete or a re-creation from then on drops the store.
 * A job whose submitter missed under the first epoch (`cacheMissed`) looks nothing up: that read was before it.
 */
async function lookUpCache(ctx: JobContext, substrateId: string, parameters: Record<string, unknown>): Promise<CacheLookup> {
  return ctx.cacheMissed ? { epoch: firstEpoch } : ctx.cache.lookup(ctx.customerId, substrateId, parameters);
}

async function loadSubstrate(ctx: JobContext, id: string): Promise<SubstrateDefinition> {
  const substrate = await ctx.substrates.get(() => ctx.em, ctx.customerId, id);
  if (!substrate) throw new PermanentJobError(`substrate ${id} not found`);
  return substrate;
}

export const invokeJob = defineJob({
  name: 'invoke',
  description: "Evaluate a substrate's expression with parameters, or apply an operator to its value.",
  payload: invokePayloadSchema,
  result: invokeResultSchema,
  queue: { attempts: 3, sharded: true, bundled: true },
  tasks: [evaluateTask, evaluateManyTask],
  substrateIds: (payload) => (payload.substrate_id ? [payload.substrate_id] : []),
  cacheKey: (payload) =>
    payload.operation || !payload.substrate_id ? null : { substrateId: payload.substrate_id, parameters: payload.parameters ?? {} },
  async process(payload, ctx) {
    const parameters = payload.parameters ?? {};
    const operation = payload.operation;
    if (operation?.op === 'multiply') return multiply(operation.dimension_values);
    const substrateId = payload.substrate_id as string;

    if (!operation) {
      const started = performance.now();
      const cached = await lookUpCache(ctx, substrateId, parameters);
      if ('value' in cached) return { substrate_id: substrateId, result: cached.value, invocation_time_ms: elapsed(started), cached: true };
      const value = await evaluateSubstrate(await loadSubstrate(ctx, substrateId), parameters, ctx);
      // Not awaited: the answer need not wait for the cache (a failed write is only a later miss). However late
      // it lands, the epoch keeps it from answering for the substrate after a delete.
      void ctx.cache
        .set(ctx.customerId, substrateId, parameters, value, cached.epoch)
        .catch((error: unknown) => ctx.logger.warn({ err: error, substrateId }, 'invocation cache write failed'));
      return { substrate_id: substrateId, result: value, invocation_time_ms: elapsed(started), cached: false };
    }

    const value = await evaluateSubstrate(await loadSubstrate(ctx, substrateId), parameters, ctx);
    if (typeof value !== 'number') throw new PermanentJobError(`substrate ${substrateId} evaluates to ${typeof value}, not a number`);
    return applyOperation(value, operation);
  },
});

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}
