import { z } from 'zod';
import { gatherSubstrateFacts } from '../../db/repositories/substrate-facts.js';
import { defineJob } from '../define-job.js';
import { PermanentJobError } from '../errors.js';
import { substrateIdSchema } from '../invoke/invoke.job.js';
import { defineTask } from '../define-task.js';
import type { ExpressionShape } from './analyze-expression.js';
import type { AnalyzeInput } from './analyze.task.js';
import { fibonacciSequence, projectDimensions } from './dimensions.js';

export const dividePayloadSchema = z.strictObject({ substrate_id: substrateIdSchema });

export const divideResultSchema = z.object({
  substrate_id: z.string(),
  dimensions: z.array(z.object({ level: z.number(), name: z.string(), description: z.string(), value: z.unknown() })).length(9),
  fibonacci_sequence: z.array(z.number()),
});

/** The shape of a substrate's expression, parsed in a pool thread. */
export const analyzeTask = defineTask<AnalyzeInput, ExpressionShape>({ name: 'analyze', module: import.meta.url, file: './analyze.task' });

export const divideJob = defineJob({
  name: 'divide',
  description: 'Split a substrate into its 9 Fibonacci dimensions, each carrying its own projection.',
  payload: dividePayloadSchema,
  result: divideResultSchema,
  queue: { sharded: true },
  tasks: [analyzeTask],
  substrateIds: (payload) => [payload.substrate_id],
  async process(payload, ctx) {
    const facts = await gatherSubstrateFacts(ctx.em, ctx.customerId, payload.substrate_id);
    if (!facts) throw new PermanentJobError(`substrate ${payload.substrate_id} not found`);
    const shape =
      facts.expressionType === 'expression' && facts.expression
        ? await ctx.runTask(analyzeTask, { expression: facts.expression }, ctx.signal)
        : null;
    return {
      substrate_id: facts.id,
      dimensions: projectDimensions(facts, shape, new Date()),
      fibonacci_sequence: [...fibonacciSequence],
    };
  },
});
