/**
 * The thread side of a task that answers per item (`defineTask({ perItem })`): the pool sends a slice of
 * inputs with a small shared progress buffer; the task runs the items one by one, telling the pool through
 * the buffer which item runs and since when (so the pool times each item on its own and knows which one to
 * blame if the thread must be stopped), and hands the thread back once the slice has run for `sliceMs`
 * (the pool queues the rest behind other customers' work). Pure: task modules import it.
 */

/** What the pool sends to a per-item task. A bare array (a direct call, a unit test) runs every item. */
export interface PerItemRequest<Input> {
  inputs: Input[];
  /** Int32Array over it: [0] = running item + 1 (0 none yet, -1 returning), [1] = its start, ms after `base`. */
  progress: SharedArrayBuffer;
  /** `Date.now()` when the pool built the request. */
  base: number;
  /** After this long the task answers the items it has run (at least one). */
  sliceMs: number;
}

/** One item's outcome: the per-item task's output, or why it failed. */
export type ItemOutcome<Output> = Output | { error: string };

export interface PerItemAnswer<Output> {
  /** The outcomes of the first `outputs.length` inputs. */
  outputs: ItemOutcome<Output>[];
  /** Each of those items' run time on the thread, ms. */
  workMs: number[];
}

/** Progress slots in the shared buffer. */
export const progressSlots = { running: 0, startedAt: 1 } as const;
/** `running` while the task is returning its answer (no item runs). */
export const returning = -1;

const firstLine = (error: unknown): string => (error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error));

/** Runs the items of `request` with `one`; a thrown item becomes `{ error }` (its message's first line). */
export function runPerItem<Input, Output>(request: PerItemRequest<Input>, one: (input: Input) => Output): PerItemAnswer<Output>;
export function runPerItem<Input, Output>(request: Input[], one: (input: Input) => Output): ItemOutcome<Output>[];
export function runPerItem<Input, Output>(
  request: PerItemRequest<Input> | Input[],
  one: (input: Input) => Output,
): PerItemAnswer<Output> | ItemOutcome<Output>[] {
  if (Array.isArray(request)) return request.map((input) => attempt(one, input));
  const progress = new Int32Array(request.progress);
  const { inputs, base, sliceMs } = request;
  const sliceStarted = performance.now();
  const outputs: ItemOutcome<Output>[] = [];
  const workMs: number[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const started = performance.now();
    if (i > 0 && started - sliceStarted >= sliceMs) break;
    Atomics.store(progress, progressSlots.startedAt, Date.now() - base);
    Atomics.store(progress, progressSlots.running, i + 1);
    outputs.push(attempt(one, inputs[i] as Input));
    workMs.push(performance.now() - started);
  }
  Atomics.store(progress, progressSlots.startedAt, Date.now() - base);
  Atomics.store(progress, progressSlots.running, returning);
  return { outputs, workMs };
}

function attempt<Input, Output>(one: (input: Input) => Output, input: Input): ItemOutcome<Output> {
  try {
    return one(input);
  } catch (error) {
    return { error: firstLine(error) };
  }
}
