import { Piscina } from 'piscina';
import type { RunTask, TaskName } from '../jobs/context.js';
import type { EvaluateInput, EvaluateOutput, Evaluation } from '../jobs/invoke/evaluate.task.js';
import { PermanentJobError } from '../jobs/errors.js';

export interface PoolOptions {
  threads: number;
  /** Piscina task timeout in ms (the thread is terminated and replaced). */
  taskTimeoutMs: number;
  /** Heap cap per thread in MB. Default 64. */
  maxOldGenerationSizeMb?: number;
  /** Tasks waiting for a thread before new ones are refused. Default 10,000. */
  maxQueue?: number;
}

const taskFile = new URL('../jobs/invoke/evaluate.task' + (import.meta.url.endsWith('.ts') ? '.ts' : '.js'), import.meta.url).href;

/** The CPU pool: CEL evaluation in worker threads with a timeout and memory limits. */
export function createEvaluationPool(options: PoolOptions): Piscina {
  return new Piscina({
    filename: taskFile,
    minThreads: options.threads,
    maxThreads: options.threads,
    maxQueue: options.maxQueue ?? 10_000,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
    resourceLimits: {
      maxOldGenerationSizeMb: options.maxOldGenerationSizeMb ?? 64,
      maxYoungGenerationSizeMb: 16,
      stackSizeMb: 4,
    },
    ...(import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {}),
  });
}

/** Runs a named task with the timeout; every failure becomes a PermanentJobError with a clear message. */
export function taskRunner(pool: Piscina, taskTimeoutMs: number): RunTask {
  const runOne = async <Input, Output>(name: TaskName, input: Input, signal?: AbortSignal): Promise<Output> => {
    // One controller and one timer per task (AbortSignal.timeout + AbortSignal.any cost more and, on
    // Node 20, keep listeners on the job's signal alive until it is collected).
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, taskTimeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return (await pool.run(input, { name: name === 'evaluate' ? 'default' : name, signal: controller.signal })) as Output;
    } catch (error) {
      if (timedOut) throw new PermanentJobError(`evaluation exceeded the ${taskTimeoutMs} ms time limit`);
      if (signal?.aborted) throw new PermanentJobError('cancelled');
      const message = error instanceof Error ? error.message : String(error);
      if (/ERR_WORKER_OUT_OF_MEMORY|out of memory|heap limit/i.test(message + String((error as { code?: string }).code))) {
        throw new PermanentJobError('evaluation exceeded its memory limit');
      }
      if (/queue is full|Task queue is at limit/i.test(message)) throw error;
      throw new PermanentJobError(`evaluation failed: ${message.split('\n')[0]}`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  };
  /**
   * `evaluateMany` that never fails as a whole: if the task itself dies (time limit, memory), each input
   * runs again alone, so one runaway expression fails by itself and the rest still succeed (at the cost
   * of a second wait). Errors come back per item, worded as a single evaluation's would be.
   */
  const evaluateEach = async (inputs: EvaluateInput[], signal?: AbortSignal): Promise<Evaluation[]> => {
    try {
      const outputs = await runOne<EvaluateInput[], Evaluation[]>('evaluateMany', inputs, signal);
      return outputs.map((output) => ('error' in output ? { error: `evaluation failed: ${output.error}` } : output));
    } catch (error) {
      if (signal?.aborted) throw error;
      return Promise.all(
        inputs.map((input) => runOne<EvaluateInput, EvaluateOutput>('evaluate', input, signal).catch((failure: unknown) => ({ error: errorMessage(failure) }))),
      );
    }
  };
  const evaluations = new EvaluationBatcher(evaluateEach, (input, signal) => runOne<EvaluateInput, EvaluateOutput>('evaluate', input, signal));
  return <Input, Output>(name: TaskName, input: Input, signal?: AbortSignal): Promise<Output> => {
    if (name === 'evaluate') return evaluations.run(input as EvaluateInput, signal) as Promise<Output>;
    if (name === 'evaluateMany') return evaluateEach(input as EvaluateInput[], signal) as Promise<Output>;
    return runOne<Input, Output>(name, input, signal);
  };
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface PendingEvaluation {
  input: EvaluateInput;
  signal?: AbortSignal;
  resolve: (output: EvaluateOutput) => void;
  reject: (error: unknown) => void;
}

/** Most evaluations in one batched task. */
const maxEvaluationBatch = 64;

/**
 * Single evaluations requested in the same event-loop turn (the jobs a busy worker starts together) go
 * to a thread as one `evaluateMany` task: one message round trip for many jobs instead of one each.
 * An item that fails fails only its own job, and a job cancelled meanwhile is answered at once. A lone
 * evaluation (a quiet worker) is sent as it is, with its job's signal.
 */
class EvaluationBatcher {
  private pending: PendingEvaluation[] = [];
  private scheduled = false;

  constructor(
    private readonly evaluateEach: (inputs: EvaluateInput[]) => Promise<Evaluation[]>,
    private readonly evaluateOne: (input: EvaluateInput, signal?: AbortSignal) => Promise<EvaluateOutput>,
  ) {}

  run(input: EvaluateInput, signal?: AbortSignal): Promise<EvaluateOutput> {
    if (signal?.aborted) return Promise.reject(new PermanentJobError('cancelled'));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new PermanentJobError('cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settled = <T>(settle: (value: T) => void) => (value: T) => {
        signal?.removeEventListener('abort', onAbort);
        settle(value);
      };
      this.pending.push({ input, signal, resolve: settled(resolve), reject: settled(reject) });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        while (this.pending.length > 0) void this.dispatch(this.pending.splice(0, maxEvaluationBatch));
      });
    });
  }

  private async dispatch(batch: PendingEvaluation[]): Promise<void> {
    const live = batch.filter((item) => !item.signal?.aborted);
    if (live.length === 1) {
      const [item] = live as [PendingEvaluation];
      return this.evaluateOne(item.input, item.signal).then(item.resolve, item.reject);
    }
    try {
      const outcomes = await this.evaluateEach(live.map((item) => item.input));
      live.forEach((item, index) => {
        const outcome = outcomes[index] ?? { error: 'evaluation failed: no result' };
        if ('error' in outcome) item.reject(new PermanentJobError(outcome.error));
        else item.resolve(outcome as EvaluateOutput);
      });
    } catch (error) {
      for (const item of live) item.reject(error);
    }
  }
}
