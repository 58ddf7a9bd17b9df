/**
 * Piscina entry: evaluate one CEL expression. Pure — no imports of db/ or workers/ — so a unit test can call it.
 * Runs in a worker thread with a timeout and memory limits set by the pool.
 */
import { celToJson, createCelEnvironment } from './cel-environment.js';
import { limitGrowth, startEvaluation } from './growth-limits.js';
import { jsonCharactersAtLeast, resultMaxBytesCeiling, resultTooLargeCode } from '../result-limit.js';
import { runPerItem, type PerItemAnswer, type PerItemRequest } from '../per-item.js';

export interface EvaluateInput {
  expression: string;
  parameters: Record<string, unknown>;
}

export interface EvaluateOutput {
  value: unknown;
}

const env = createCelEnvironment();
const compiled = new Map<string, ReturnType<typeof env.parse>>();
const maxCompiled = 1000;

function compile(expression: string) {
  let program = compiled.get(expression);
  if (!program) {
    program = limitGrowth(env.parse(expression));
    if (compiled.size >= maxCompiled) compiled.delete(compiled.keys().next().value as string);
    compiled.set(expression, program);
  }
  return program;
}

function evaluateOnce({ expression, parameters }: EvaluateInput): EvaluateOutput {
  const program = compile(expression);
  startEvaluation();
  return { value: celToJson(program(parameters)) };
}

/**
 * One evaluation, sent on its own. Its result is measured against RESULT_MAX_BYTES on the worker's main thread,
 * after the transfer, so one past any setting of it is refused here, before it is copied there: a list of 130
 * copies of a 4 Mi-character string, 16 MB of worker memory each, had ended the process. (`evaluateMany`'s items
 * are measured on the thread against the setting itself.)
 */
export default function evaluate(input: EvaluateInput): EvaluateOutput {
  const output = evaluateOnce(input);
  const atLeast = jsonCharactersAtLeast(output.value, resultMaxBytesCeiling);
  if (atLeast > resultMaxBytesCeiling) {
    throw new RangeError(
      `${resultTooLargeCode}: the result is at least ${atLeast} bytes of JSON, more than any job may return (${resultMaxBytesCeiling})`,
    );
  }
  return output;
}

/** One evaluation's outcome when several run in one task. */
export type Evaluation = EvaluateOutput | { error: string };

/**
 * Several evaluations in one task: one thread round trip for a whole chunk of a batch (or for the single
 * evaluations a busy worker starts together). The pool sends a slice request (each item timed on its own,
 * the thread handed back after a time slice); a bare array runs every item.
 */
export function evaluateMany(request: PerItemRequest<EvaluateInput>): PerItemAnswer<EvaluateOutput>;
export function evaluateMany(request: EvaluateInput[]): Evaluation[];
export function evaluateMany(request: PerItemRequest<EvaluateInput> | EvaluateInput[]): PerItemAnswer<EvaluateOutput> | Evaluation[] {
  return Array.isArray(request) ? runPerItem(request, evaluateOnce) : runPerItem(request, evaluateOnce, (output) => output.value);
}
