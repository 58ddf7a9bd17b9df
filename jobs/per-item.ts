/**
 * The thread side of a task that answers per item (`defineTask({ perItem })`): the pool sends a slice of
 * inputs with a small shared progress buffer; the task runs the items one by one, telling the pool through
 * the buffer which item runs and since when (so the pool times each item on its own and knows which one to
 * blame if the thread must be stopped), and hands the thread back once the slice has run for `sliceMs`
 * (the pool queues the rest behind other customers' work). Pure: task modules import it.
 */

import { jsonCharactersAtLeast } from './result-limit.js';

/** What the pool sends to a per-item task. A bare array (a direct call, a unit test) runs every item. */
export interface PerItemRequest<Input> {
  inputs: Input[];
  /** Int32Array over it: [0] = running item + 1 (0 none yet, -1 returning), [1] = its start, ms after `base`. */
  progress: SharedArrayBuffer;
  /** `Date.now()` when the pool built the request. */
  base: number;
  /** After this long the task answers the items it has run (at least one). */
  sliceMs: number;
  /** A result bigger than this (bytes of JSON) is not sent back: the item answers `{ oversizedBytes }` instead. */
  resultMaxBytes?: number;
  /** Once the results answered add up to this (bytes of JSON, about), the task answers the items it has run (at least one). */
  answerMaxBytes?: number;
}

/** One item's outcome: the per-item task's output, or why it failed. */
export type ItemOutcome<Output> = Output | { error: string };

/** An item whose result was over `resultMaxBytes`: its size, in place of the result (which stays on the thread). */
export interface OversizedResult {
  oversizedBytes: number;
  /** `oversizedBytes` is a lower bound: the result was too big to be worth encoding to measure it exactly. */
  atLeast?: true;
}

export const isOversized = (output: unknown): output is OversizedResult =>
  typeof output === 'object' && output !== null && 'oversizedBytes' in output;

export interface PerItemAnswer<Output> {
  /** The outcomes of the first `outputs.length` inputs. */
  outputs: Array<ItemOutcome<Output> | OversizedResult>;
  /** Each of those items' run time on the thread, ms. */
  workMs: number[];
  /** Each of those items' result size, bytes of JSON (about; 0 for an error or an oversized result). */
  resultBytes: number[];
}

/** Progress slots in the shared buffer. */
export const progressSlots = { running: 0, startedAt: 1 } as const;
/** `running` while the task is returning its answer (no item runs). */
export const returning = -1;

const firstLine = (error: unknown): string => (error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error));

/**
 * Runs the items of `request` with `one`; a thrown item becomes `{ error }` (its message's first line).
 * `resultOf` picks the part of an output that is the item's result, which `resultMaxBytes` and
 * `answerMaxBytes` measure (default the whole output).
 */
export function runPerItem<Input, Output>(
  request: PerItemRequest<Input>,
  one: (input: Input) => Output,
  resultOf?: (output: Output) => unknown,
): PerItemAnswer<Output>;
export function runPerItem<Input, Output>(request: Input[], one: (input: Input) => Output): ItemOutcome<Output>[];
export function runPerItem<Input, Output>(
  request: PerItemRequest<Input> | Input[],
  one: (input: Input) => Output,
  resultOf: (output: Output) => unknown = (output) => output,
): PerItemAnswer<Output> | ItemOutcome<Output>[] {
  if (Array.isArray(request)) return request.map((input) => attempt(one, input));
  const progress = new Int32Array(request.progress);
  const { inputs, base, sliceMs, resultMaxBytes = Infinity, answerMaxBytes = Infinity } = request;
  const sliceStarted = performance.now();
  const outputs: Array<ItemOutcome<Output> | OversizedResult> = [];
  const workMs: number[] = [];
  const resultBytes: number[] = [];
  let answerBytes = 0;
  for (let i = 0; i < inputs.length; i++) {
    const started = performance.now();
    if (i > 0 && (started - sliceStarted >= sliceMs || answerBytes >= answerMaxBytes)) break;
    Atomics.store(progress, progressSlots.startedAt, Date.now() - base);
    Atomics.store(progress, progressSlots.running, i + 1);
    const output = attempt(one, inputs[i] as Input);
    const { bytes, exact } = isItemError(output) ? { bytes: 0, exact: true } : resultSize(resultOf(output), resultMaxBytes);
    if (bytes > resultMaxBytes) {
      outputs.push({ oversizedBytes: bytes, ...(exact ? {} : { atLeast: true as const }) });
      resultBytes.push(0);
    } else {
      outputs.push(output);
      resultBytes.push(bytes);
      answerBytes += bytes;
    }
    workMs.push(performance.now() - started);
  }
  Atomics.store(progress, progressSlots.startedAt, Date.now() - base);
  Atomics.store(progress, progressSlots.running, returning);
  return { outputs, workMs, resultBytes };
}

/** An item that failed (thrown, or stopped by the pool). */
export const isItemError = (output: unknown): output is { error: string } =>
  typeof output === 'object' && output !== null && 'error' in output;

/** Past this many characters (and past the limit) a result is measured by walking it, not by encoding it. */
const encodeAtMostChars = 16 * 1024 * 1024;

/**
 * A result's size in bytes of JSON: about (a string's length, not its UTF-8 size) unless it may be over
 * `limitBytes`, then exactly. Numbers and the like count 8; only objects and arrays are encoded. A result far
 * over the limit is told by walking it, and its size is then a lower bound (`exact: false`): a list of 500 copies
 * of one 655,360-character string is 327 MB of JSON, which laid out flat on the thread would abort the process.
 */
function resultSize(value: unknown, limitBytes: number): { bytes: number; exact: boolean } {
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return { bytes: 8, exact: true };
  const walkAtMost = Math.max(limitBytes, Math.min(8 * limitBytes, encodeAtMostChars));
  const atLeast = jsonCharactersAtLeast(value, walkAtMost);
  if (atLeast > walkAtMost) return { bytes: atLeast, exact: false };
  const about = typeof value === 'string' ? value.length + 2 : (JSON.stringify(value)?.length ?? 0);
  // A character is at most 3 bytes of UTF-8 (and an escape at most 6 characters): only near the limit count exactly.
  return { bytes: about * 6 <= limitBytes ? about : Buffer.byteLength(JSON.stringify(value) ?? ''), exact: true };
}

function attempt<Input, Output>(one: (input: Input) => Output, input: Input): ItemOutcome<Output> {
  try {
    return one(input);
  } catch (error) {
    return { error: firstLine(error) };
  }
}
