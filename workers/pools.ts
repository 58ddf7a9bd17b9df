import { Piscina } from 'piscina';
import type { RunTask, TaskName } from '../jobs/context.js';
import type { EvaluateInput, EvaluateOutput } from '../jobs/invoke/evaluate.task.js';
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
  const evaluations = new EvaluationBatcher(runOne);
  return <Input, Output>(name: TaskName, input: Input, signal?: AbortSignal): Promise<Output> =>
    name === 'evaluate' ? (evaluations.run(input as EvaluateInput, signal) as Promise<Output>) : runOne<Input, Output>(name, input, signal);
}

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
 * to a thread as one `evaluateMany` task: one message round trip for many jobs instead of one each. An
 * item that throws fails only its own job. If the whole task dies (time limit, memory), each item runs
 * again alone, so a runaway expression still fails by itself (its job then waits up to twice the limit).
 * A lone evaluation (a quiet worker) is sent as it is.
 */
class EvaluationBatcher {
  private pending: PendingEvaluation[] = [];
  private scheduled = false;

  constructor(private readonly runOne: <Input, Output>(name: TaskName, input: Input, signal?: AbortSignal) => Promise<Output>) {}

  run(input: EvaluateInput, signal?: AbortSignal): Promise<EvaluateOutput> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, signal, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        while (this.pending.length > 0) void this.dispatch(this.pending.splice(0, maxEvaluationBatch));
      });
    });
  }

  private async dispatch(batch: PendingEvaluation[]): Promise<void> {
    const live = batch.filter((item) => {
      if (item.signal?.aborted) item.reject(new PermanentJobError('cancelled'));
      return !item.signal?.aborted;
    });
    if (live.length <= 1) return live.forEach((item) => this.alone(item));
    let outputs: Array<{ value: unknown } | { error: string }>;
    try {
      outputs = await this.runOne<EvaluateInput[], Array<{ value: unknown } | { error: string }>>('evaluateMany', live.map((item) => item.input));
    } catch {
      return live.forEach((item) => this.alone(item));
    }
    live.forEach((item, index) => {
      const output = outputs[index];
      if (item.signal?.aborted) item.reject(new PermanentJobError('cancelled'));
      else if (!output || 'error' in output) item.reject(new PermanentJobError(`evaluation failed: ${output?.error ?? 'no result'}`));
      else item.resolve(output);
    });
  }

  private alone(item: PendingEvaluation): void {
    this.runOne<EvaluateInput, EvaluateOutput>('evaluate', item.input, item.signal).then(item.resolve, item.reject);
  }
}
