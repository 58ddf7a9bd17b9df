/**
 * Piscina entry: evaluate one CEL expression. Pure — no imports of db/ or workers/ — so a unit test can call it.
 * Runs in a worker thread with a timeout and memory limits set by the pool.
 */
import { celToJson, createCelEnvironment } from './cel-environment.js';
import { limitGrowth, startEvaluation } from './growth-limits.js';
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

export default function evaluate({ expression, parameters }: EvaluateInput): EvaluateOutput {
  const program = compile(expression);
  startEvaluation();
  return { value: celToJson(program(parameters)) };
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
  return Array.isArray(request) ? runPerItem(request, evaluate) : runPerItem(request, evaluate, (output) => output.value);
}
