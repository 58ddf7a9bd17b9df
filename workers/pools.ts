import { Piscina } from 'piscina';
import type { RunTask } from '../jobs/context.js';
import type { TaskDeclaration } from '../jobs/define-task.js';
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

/**
 * The CPU pool: the tasks the registered job types declare (CEL evaluation, expression analysis…), in
 * worker threads with a timeout and memory limits. Every thread loads the first task's module when it
 * starts (invoke's, which carries nearly all the work); other modules load on their first call.
 */
export function createTaskPool(tasks: readonly TaskDeclaration[], options: PoolOptions): Piscina {
  return new Piscina({
    filename: tasks[0]?.path ?? null,
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

/** Where Piscina finds a task: its export, and its module unless it is the pool's own (then Piscina's default, resolved once). */
interface TaskRoute {
  name: string;
  filename: string | undefined;
}

type RunOne = (input: unknown, signal?: AbortSignal) => Promise<unknown>;

/**
 * Runs the declared tasks with the timeout; every failure becomes a PermanentJobError with a clear
 * message, and so does a task no registered job type declares. `tasks` must be the pool's (createTaskPool).
 */
export function taskRunner(pool: Piscina, taskTimeoutMs: number, tasks: readonly TaskDeclaration[]): RunTask {
  const poolModule = tasks[0]?.path;
  const routeOf = (task: TaskDeclaration): TaskRoute => ({
    name: task.exportName,
    filename: task.path === poolModule ? undefined : task.path,
  });
  const runOne = async (route: TaskRoute, input: unknown, signal?: AbortSignal): Promise<unknown> => {
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
      return await pool.run(input, { name: route.name, filename: route.filename, signal: controller.signal });
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
   * A per-item task that never fails as a whole: if the task itself dies (time limit, memory), each input
   * runs again alone, so one runaway input fails by itself and the rest still succeed (at the cost of a
   * second wait). Errors come back per item, worded as a single run's would be.
   */
  const runEach =
    (many: TaskRoute, one: TaskRoute) =>
    async (inputs: unknown[], signal?: AbortSignal): Promise<unknown[]> => {
      try {
        const outputs = (await runOne(many, inputs, signal)) as unknown[];
        return outputs.map((output) => (isItemError(output) ? { error: `evaluation failed: ${output.error}` } : output));
      } catch (error) {
        if (signal?.aborted) throw error;
        return Promise.all(
          inputs.map((input) => runOne(one, input, signal).catch((failure: unknown) => ({ error: errorMessage(failure) }))),
        );
      }
    };

  const runners = new Map<TaskDeclaration, RunOne>();
  for (const task of tasks) {
    const route = routeOf(task);
    runners.set(task, task.perItem ? (runEach(route, routeOf(task.perItem)) as RunOne) : (input, signal) => runOne(route, input, signal));
  }
  for (const task of tasks) {
    if (!task.perItem || !task.gathersPerItemCalls) continue;
    const one = routeOf(task.perItem);
    const gathered = new GatheredCalls(runEach(routeOf(task), one), (input, signal) => runOne(one, input, signal));
    runners.set(task.perItem, (input, signal) => gathered.run(input, signal));
  }
  return <Input, Output>(task: TaskDeclaration<Input, Output>, input: Input, signal?: AbortSignal): Promise<Output> => {
    const run = runners.get(task as TaskDeclaration);
    if (!run) return Promise.reject(new PermanentJobError(`task "${task.name}" is not declared by any registered job type`));
    return run(input, signal) as Promise<Output>;
  };
}

const isItemError = (output: unknown): output is { error: string } => typeof output === 'object' && output !== null && 'error' in output;

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface PendingCall {
  input: unknown;
  signal?: AbortSignal;
  resolve: (output: unknown) => void;
  reject: (error: unknown) => void;
}

/** Most calls gathered into one task. */
const maxGatheredCalls = 64;

/**
 * Calls of a per-item task made in the same event-loop turn (the jobs a busy worker starts together) go
 * to a thread as one call of the task that runs many (`gathersPerItemCalls`): one message round trip for
 * many jobs instead of one each. An item that fails fails only its own job, and a job cancelled meanwhile
 * is answered at once. A lone call (a quiet worker) is sent as it is, with its job's signal.
 */
class GatheredCalls {
  private pending: PendingCall[] = [];
  private scheduled = false;

  constructor(
    private readonly runEach: (inputs: unknown[]) => Promise<unknown[]>,
    private readonly runOne: (input: unknown, signal?: AbortSignal) => Promise<unknown>,
  ) {}

  run(input: unknown, signal?: AbortSignal): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(new PermanentJobError('cancelled'));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new PermanentJobError('cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settled =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          signal?.removeEventListener('abort', onAbort);
          settle(value);
        };
      this.pending.push({ input, signal, resolve: settled(resolve), reject: settled(reject) });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        while (this.pending.length > 0) void this.dispatch(this.pending.splice(0, maxGatheredCalls));
      });
    });
  }

  private async dispatch(batch: PendingCall[]): Promise<void> {
    const live = batch.filter((item) => !item.signal?.aborted);
    if (live.length === 1) {
      const [item] = live as [PendingCall];
      return this.runOne(item.input, item.signal).then(item.resolve, item.reject);
    }
    try {
      const outcomes = await this.runEach(live.map((item) => item.input));
      live.forEach((item, index) => {
        const outcome = outcomes[index] ?? { error: 'evaluation failed: no result' };
        if (isItemError(outcome)) item.reject(new PermanentJobError(outcome.error));
        else item.resolve(outcome);
      });
    } catch (error) {
      for (const item of live) item.reject(error);
    }
  }
}
