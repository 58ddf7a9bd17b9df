import v8 from 'node:v8';
import { Piscina } from 'piscina';
import type { OwnedRunTask, TaskOwner } from '../jobs/context.js';
import type { TaskDeclaration } from '../jobs/define-task.js';
import { PermanentJobError } from '../jobs/errors.js';
import { isItemError, isOversized, progressSlots, type ItemOutcome, type PerItemAnswer, type PerItemRequest } from '../jobs/per-item.js';
import { ResultTooLargeError } from '../jobs/result-limit.js';
import { TenantQueue, type Taken } from './tenant-queue.js';

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
 * Regular expressions (CEL's `matches`) run in linear time once they backtrack too much: V8 switches such a
 * match to its non-backtracking engine, so `"a"×30 + "b"` against `^(a|a)*$` answers in about a millisecond
 * instead of hours, and ordinary matches keep the backtracking engine's speed. V8 flags belong to the process,
 * so the pool's threads have it too. (Patterns the linear engine cannot run — backreferences, lookaround,
 * which RE2 and so CEL do not have — still backtrack, bounded by the time limit.)
 */
export function enableLinearRegExpFallback(): void {
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
}

/** What the pool's balancer calls when it hands a task to a thread: the task's time starts then. */
interface StartNotice {
  started(): void;
}

const queueOptions = Piscina.queueOptionsSymbol;

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

/** Threads that have loaded their task module, and when each of the pool's first threads has. */
interface Readiness {
  threadIds: Set<number>;
  firstThreads: Promise<void>[];
}
const readinessOf = new WeakMap<Piscina, Readiness>();

/**
 * Piscina's least-busy choice (a thread with nothing to run) among threads that have loaded their task
 * module, telling the task it starts: the moment its message goes to the thread, which is when its time
 * limit and run time begin. A thread still loading (through tsx that can take seconds) gets nothing, so
 * loading never counts against a task; Piscina offers the task again when the thread is ready.
 */
const startingBalancer =
  (readyThreads: Set<number>): LoadBalancer =>
  (task, workers) => {
    for (const worker of workers) {
      if (worker.currentUsage !== 0 || !readyThreads.has(worker.id)) continue;
      ((task as unknown as Record<symbol, unknown>)[queueOptions] as StartNotice | null | undefined)?.started();
      return worker;
    }
    return null;
  };

/**
 * Piscina counts the pool's first threads as ready from the start (they load the task module meanwhile)
 * and later ones once loaded ('workerCreate'); a thread's first message is its "loaded". A thread leaves
 * the set when it is destroyed (stopped at the time limit, say) until its replacement has loaded.
 */
function watchReadiness(pool: Piscina, threadIds: Set<number>): Promise<void>[] {
  pool.on('workerCreate', (worker: { id: number }) => {
    if (!pool.threads.some((thread) => thread.threadId === worker.id && !firstThreads.has(thread))) return;
    threadIds.add(worker.id);
  });
  pool.on('workerDestroy', (worker: { id: number }) => threadIds.delete(worker.id));
  const firstThreads = new Set(pool.threads);
  return [...firstThreads].map(
    (thread) =>
      new Promise<void>((resolve) => {
        const id = thread.threadId;
        thread.once('message', () => {
          threadIds.add(id);
          resolve();
        });
        thread.once('exit', () => resolve());
      }),
  );
}

/**
 * The CPU pool: the tasks the registered job types declare (CEL evaluation, expression analysis…), in
 * worker threads with a timeout and memory limits. Every thread loads the first task's module when it
 * starts (invoke's, which carries nearly all the work); other modules load on their first call. Tasks
 * reach it through `taskRunner`, which queues them per customer and hands Piscina only as many as it has
 * threads, so Piscina's own first-in-first-out queue stays empty.
 */
export function createTaskPool(tasks: readonly TaskDeclaration[], options: PoolOptions): Piscina {
  enableLinearRegExpFallback();
  const threadIds = new Set<number>();
  const pool = new Piscina({
    filename: tasks[0]?.path ?? null,
    minThreads: options.threads,
    maxThreads: options.threads,
    maxQueue: options.maxQueue ?? 10_000,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
    loadBalancer: startingBalancer(threadIds),
    resourceLimits: {
      maxOldGenerationSizeMb: options.maxOldGenerationSizeMb ?? 64,
      maxYoungGenerationSizeMb: 16,
      stackSizeMb: 4,
    },
    ...(import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {}),
  });
  readinessOf.set(pool, { threadIds, firstThreads: watchReadiness(pool, threadIds) });
  return pool;
}

/** Where Piscina finds a task: its export, and its module unless it is the pool's own (then Piscina's default, resolved once). */
interface TaskRoute {
  name: string;
  filename: string | undefined;
}

/** How long a task that answers per item runs before it hands its thread back (the rest queues again). */
export const defaultSliceMs = 100;
/** The longest a task that stopped its thread counts as running while the replacement loads. */
const replacementWaitMs = 10_000;
/** What a direct call of a per-item task answers at most, in bytes of results (about), before it returns part. */
export const defaultAnswerMaxBytes = 4 * 1024 * 1024;

/** The pool's runner, with the number of tasks waiting for a thread (for the queue-size metric). */
export type PoolRunner = OwnedRunTask & { readonly waiting: number };

const anonymous: TaskOwner = { customerId: '', workMs: 0 };

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The thread died at its heap limit. Told by Node's error code (or its message), never by words anywhere in a
 * message: a task's own error quotes the customer's text (`No such key: heap limit`), and taken for a stopped
 * thread it would hold a place of the pool until a replacement that never comes.
 */
const outOfMemory = (error: unknown): boolean =>
  (error as { code?: unknown } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY' ||
  errorMessage(error).startsWith('Worker terminated due to reaching memory limit');

/** Starts a queued task on a free thread (the queue's entry). */
type Start = (taken: Taken<Start>) => void;

/** A task given to Piscina with the time it started on a thread. */
interface Started<T> {
  value: T;
  startedAt: number;
}

/**
 * Runs the declared tasks with the time limit; every failure becomes a PermanentJobError with a clear
 * message, and so does a task no registered job type declares. `tasks` must be the pool's (createTaskPool).
 *
 * - Tasks wait in a queue per customer, served by thread time (weighted by the owner's `weight`), and only
 *   as many run as the pool has threads; the last free thread is kept from a customer with long tasks that
 *   already runs one while another customer is active (see TenantQueue), so quick work finds it free.
 * - A task's time limit and its run time (`owner.workMs`) start when a thread takes it, not while it waits.
 * - A task that answers per item runs in slices of `sliceMs`, each item timed on its own: an item past the
 *   limit (or the heap cap) stops its thread and fails alone with that reason, the others run again.
 * - An item's result over `resultMaxBytes` never leaves its thread: the item fails with `result_too_large`.
 *   A per-item task called directly answers once its items' results add up to `answerMaxBytes`: the items
 *   it did not get to are `undefined`, for the caller to store what it has and call again with them (so
 *   the results held in this process stay bounded whatever a customer's expressions return).
 */
export function taskRunner(
  pool: Piscina,
  taskTimeoutMs: number,
  tasks: readonly TaskDeclaration[],
  options: { sliceMs?: number; maxQueue?: number; resultMaxBytes?: number; answerMaxBytes?: number } = {},
): PoolRunner {
  const sliceMs = options.sliceMs ?? defaultSliceMs;
  const { resultMaxBytes = Infinity, answerMaxBytes = defaultAnswerMaxBytes } = options;
  const maxQueue = options.maxQueue ?? pool.options.maxQueue;
  const threads = pool.options.maxThreads;
  const queue = new TenantQueue<Start>({ longTaskMs: 2 * sliceMs });
  // Only loaded threads count: a task handed to Piscina while the only idle thread is still loading (a
  // first thread, or the replacement of one stopped at the time limit) would wait for it in Piscina's queue
  // while a customer it was kept for waits behind it.
  const readiness = readinessOf.get(pool);
  /**
   * Tasks that stopped their thread (time limit, memory, cancel), each still counted as running for its
   * customer until the thread's replacement has loaded (then it is released, and ends). Counted in the
   * customer's lane, the stopped thread keeps the last ready one from it while others are active, as if it
   * still ran: else an attacker whose runaways stop threads takes the only ready thread each time one of
   * them is replaced (a second under tsx), and a quick customer waits behind its next runaway.
   */
  const awaitingReplacement: Array<() => void> = [];
  const ready = () => (readiness ? Math.min(threads, readiness.threadIds.size + awaitingReplacement.length) : threads);
  let keptTimer: NodeJS.Timeout | undefined;
  /** Starts waiting tasks while threads are free; if the last one is kept for others, looks again when that may lapse. */
  const dispatch = (): void => {
    for (let taken = queue.take(ready()); taken; taken = queue.take(ready())) taken.entry(taken);
    if (keptTimer) return;
    const wait = queue.keptFor(ready());
    if (wait === undefined) return;
    keptTimer = setTimeout(
      () => {
        keptTimer = undefined;
        dispatch();
      },
      Math.ceil(wait) + 1,
    );
    keptTimer.unref();
  };
  for (const loaded of readiness?.firstThreads ?? []) void loaded.then(dispatch);
  // A replacement thread has loaded (readiness's own listener, registered first, has counted it): the task
  // that stopped a thread longest ago ends.
  pool.on('workerCreate', () =>
    queueMicrotask(() => {
      awaitingReplacement[0]?.();
      dispatch();
    }),
  );
  /** Ends a task that stopped its thread once a replacement has loaded (or, whatever happens, after a while). */
  const finishOnReplacement = (finish: () => void): void => {
    const release = () => {
      const index = awaitingReplacement.indexOf(release);
      if (index === -1) return;
      awaitingReplacement.splice(index, 1);
      clearTimeout(timer);
      finish();
    };
    awaitingReplacement.push(release);
    const timer = setTimeout(release, replacementWaitMs);
    timer.unref();
  };
  const poolModule = tasks[0]?.path;
  const routeOf = (task: TaskDeclaration): TaskRoute => ({
    name: task.exportName,
    filename: task.path === poolModule ? undefined : task.path,
  });
  const timeLimitError = () => new PermanentJobError(`evaluation exceeded the ${taskTimeoutMs} ms time limit`);

  /**
   * Runs `send` (which hands Piscina one task; it calls `threadStopped` if the task's thread had to be
   * stopped) when the owner's turn comes and a thread is free. Rejects with "cancelled" if `signal` aborts
   * while it waits.
   */
  const whenTurn = <T>(owner: TaskOwner, signal: AbortSignal | undefined, send: (threadStopped: () => void) => Promise<T>): Promise<T> => {
    if (signal?.aborted) return Promise.reject(new PermanentJobError('cancelled'));
    return new Promise<T>((resolve, reject) => {
      const start: Start = (taken) => {
        signal?.removeEventListener('abort', onAbort);
        const startedAt = performance.now();
        let stopped = false;
        send(() => {
          stopped = true;
        })
          .then(resolve, reject)
          .finally(() => {
            const threadMs = performance.now() - startedAt;
            const finish = () => {
              queue.finish(taken, threadMs);
              dispatch();
            };
            if (stopped && readiness) finishOnReplacement(finish);
            else finish();
          });
      };
      const onAbort = () => {
        queue.remove(start);
        reject(new PermanentJobError('cancelled'));
      };
      if (queue.size >= maxQueue) return reject(new Error('Task queue is at limit'));
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(owner.customerId, owner.weight ?? 1, start);
      dispatch();
    });
  };

  /**
   * Hands Piscina one task and settles with its output and the moment a thread took it. A plain-object
   * input carries the start notice (a symbol key, which never reaches the thread); any other starts its
   * clock here, which differs only while a replaced thread boots. `watch` arms the time limit.
   */
  const post = <T>(route: TaskRoute, input: unknown, signal: AbortSignal, onStart: (startedAt: number) => void): Promise<Started<T>> => {
    let startedAt = 0;
    const notice: StartNotice = {
      started() {
        startedAt = performance.now();
        onStart(startedAt);
      },
    };
    const carried =
      typeof input === 'object' && input !== null && !Array.isArray(input)
        ? { ...input, [queueOptions]: notice }
        : (notice.started(), input);
    return pool
      .run(carried, { name: route.name, filename: route.filename, signal })
      .then((value: T) => ({ value, startedAt: startedAt || performance.now() }));
  };

  /** Piscina's error as the job's: time limit, memory, cancel, a full queue (retried), or the task's own. */
  const failure = (error: unknown, timedOut: boolean, signal: AbortSignal | undefined): Error => {
    if (timedOut) return timeLimitError();
    if (signal?.aborted) return new PermanentJobError('cancelled');
    if (outOfMemory(error)) return new PermanentJobError('evaluation exceeded its memory limit');
    if (/queue is full|Task queue is at limit/i.test(errorMessage(error))) return error as Error;
    return new PermanentJobError(`evaluation failed: ${errorMessage(error).split('\n')[0]}`);
  };

  /** One task, one timer: the limit counts from when a thread takes it. */
  const runOne = (route: TaskRoute, input: unknown, signal: AbortSignal | undefined, owner: TaskOwner): Promise<unknown> =>
    whenTurn(owner, signal, async (threadStopped) => {
      // One controller and one timer per task (AbortSignal.timeout + AbortSignal.any cost more and, on
      // Node 20, keep listeners on the job's signal alive until it is collected).
      const controller = new AbortController();
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => controller.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let startedAt = 0;
      try {
        const started = await post(route, input, controller.signal, (at) => {
          startedAt = at;
          timer = setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, taskTimeoutMs);
        });
        startedAt = started.startedAt;
        return started.value;
      } catch (error) {
        if (startedAt && (controller.signal.aborted || outOfMemory(error))) threadStopped();
        throw failure(error, timedOut, signal);
      } finally {
        // Charged whether the task succeeded or not: a runaway's thread time is its owner's.
        if (startedAt) owner.workMs += performance.now() - startedAt;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    });

  /** What one slice of a per-item task came to: outcomes for its first items, or the item that had to be stopped. */
  type SliceResult = { answer: PerItemAnswer<unknown> } | { stopped: number; error: Error };

  /**
   * One slice of items in one task. The timer checks the item running (the shared progress buffer): past
   * the limit it stops the thread and names that item; otherwise it waits for the rest of that item's time.
   */
  const runSlice = (
    route: TaskRoute,
    inputs: unknown[],
    signal: AbortSignal | undefined,
    customer: TaskOwner,
    answerMaxBytes: number,
  ): Promise<SliceResult> =>
    whenTurn(customer, signal, async (threadStopped) => {
      const progress = new Int32Array(new SharedArrayBuffer(8));
      const request: PerItemRequest<unknown> = {
        inputs,
        progress: progress.buffer as SharedArrayBuffer,
        base: Date.now(),
        sliceMs,
        resultMaxBytes,
        answerMaxBytes,
      };
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      let stopped = -2;
      // Only an item's own run counts: before the first item the thread is loading the task's module, and
      // after the last it is sending the answer — neither is the customer's code.
      const check = () => {
        const item = Atomics.load(progress, progressSlots.running);
        const elapsed = item > 0 ? Date.now() - (request.base + Atomics.load(progress, progressSlots.startedAt)) : 0;
        if (elapsed >= taskTimeoutMs) {
          stopped = item - 1;
          return controller.abort();
        }
        timer = setTimeout(check, Math.max(1, taskTimeoutMs - elapsed));
      };
      const onAbort = () => controller.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let onThread = false;
      try {
        const started = await post<PerItemAnswer<unknown>>(route, request, controller.signal, () => {
          onThread = true;
          timer = setTimeout(check, taskTimeoutMs);
        });
        return { answer: started.value };
      } catch (error) {
        if (onThread && (controller.signal.aborted || outOfMemory(error))) threadStopped();
        if (signal?.aborted) throw new PermanentJobError('cancelled');
        const item = stopped > -2 ? stopped : Atomics.load(progress, progressSlots.running) - 1;
        return { stopped: item, error: failure(error, stopped > -2, signal) };
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    });

  /**
   * The items of a per-item task, slice after slice (each queued again behind other customers' work):
   * outcomes in input order and each item's thread time. An item that stopped its thread fails alone; the
   * items of that slice run again without it. Once the results answered add up to `budgetBytes`, no slice
   * follows: the items not run have no outcome (`undefined`). Rejects only when `signal` aborts.
   */
  const runItems = async (
    route: TaskRoute,
    inputs: unknown[],
    signal: AbortSignal | undefined,
    customer: TaskOwner,
    budgetBytes = Infinity,
  ): Promise<{ outcomes: Array<ItemOutcome<unknown> | undefined>; workMs: number[] }> => {
    const outcomes: Array<ItemOutcome<unknown> | undefined> = new Array(inputs.length);
    const workMs: number[] = new Array<number>(inputs.length).fill(0);
    let pending = inputs.map((_, index) => index);
    let answeredBytes = 0;
    while (pending.length > 0 && answeredBytes < budgetBytes) {
      const slice = await runSlice(
        route,
        pending.map((index) => inputs[index]),
        signal,
        customer,
        budgetBytes - answeredBytes,
      );
      if ('answer' in slice) {
        const { outputs, workMs: times, resultBytes } = slice.answer;
        outputs.forEach((output, i) => {
          const index = pending[i] as number;
          outcomes[index] = isItemError(output)
            ? { error: `evaluation failed: ${output.error}` }
            : isOversized(output)
              ? { error: new ResultTooLargeError(output.oversizedBytes, resultMaxBytes, output.atLeast).message }
              : output;
          workMs[index] = times[i] ?? 0;
          answeredBytes += resultBytes[i] ?? 0;
        });
        pending = pending.slice(Math.max(1, outputs.length));
        continue;
      }
      const { stopped, error } = slice;
      if (stopped < 0 || stopped >= pending.length) {
        // Not one item's doing (the thread died loading or answering): every item of the slice fails with it.
        for (const index of pending) outcomes[index] = { error: error.message };
        break;
      }
      const culprit = pending[stopped] as number;
      outcomes[culprit] = { error: error.message };
      workMs[culprit] = taskTimeoutMs;
      pending = pending.filter((index) => index !== culprit);
    }
    return { outcomes, workMs };
  };

  /** A per-item task for one owner: the outcomes, its items' thread time added to the owner's. */
  const runEach = (many: TaskRoute) => async (inputs: unknown[], signal: AbortSignal | undefined, owner: TaskOwner) => {
    const { outcomes, workMs } = await runItems(many, inputs, signal, owner, answerMaxBytes);
    owner.workMs += workMs.reduce((sum, ms) => sum + ms, 0);
    return outcomes;
  };

  type Runner = (input: unknown, signal: AbortSignal | undefined, owner: TaskOwner) => Promise<unknown>;
  const runners = new Map<TaskDeclaration, Runner>();
  for (const task of tasks) {
    const route = routeOf(task);
    runners.set(task, task.perItem ? (runEach(route) as Runner) : (input, signal, owner) => runOne(route, input, signal, owner));
  }
  for (const task of tasks) {
    if (!task.perItem || !task.gathersPerItemCalls) continue;
    const many = routeOf(task);
    const one = routeOf(task.perItem);
    const gathered = new GatheredCalls(
      (inputs, customer) => runItems(many, inputs, undefined, customer),
      (input, signal, owner) => runOne(one, input, signal, owner),
    );
    runners.set(task.perItem, (input, signal, owner) => gathered.run(input, signal, owner));
  }
  const run = <Input, Output>(task: TaskDeclaration<Input, Output>, input: Input, signal?: AbortSignal, owner: TaskOwner = anonymous) => {
    const runner = runners.get(task as TaskDeclaration);
    if (!runner) return Promise.reject(new PermanentJobError(`task "${task.name}" is not declared by any registered job type`));
    return runner(input, signal, owner) as Promise<Output>;
  };
  return Object.defineProperty(run, 'waiting', { get: () => queue.size }) as PoolRunner;
}

interface PendingCall {
  input: unknown;
  signal?: AbortSignal;
  owner: TaskOwner;
  resolve: (output: unknown) => void;
  reject: (error: unknown) => void;
}

/** Most calls gathered into one task. */
const maxGatheredCalls = 64;

/**
 * Calls of a per-item task made in the same event-loop turn (the jobs a busy worker starts together) go
 * to a thread as one call of the task that runs many (`gathersPerItemCalls`): one message round trip for
 * many jobs instead of one each. Calls are gathered per customer (a task never mixes customers, so it
 * waits in its customer's queue). An item that fails fails only its own job, and a job cancelled
 * meanwhile is answered at once. A lone call (a quiet worker) is sent as it is, with its job's signal.
 */
class GatheredCalls {
  private pending = new Map<string, PendingCall[]>();
  private scheduled = false;
  /** Sends to the pool (a gathered batch or a lone call) not yet answered. */
  private running = 0;
  /** Calls in the last send. */
  private lastSent = 0;

  constructor(
    private readonly runItems: (inputs: unknown[], customer: TaskOwner) => Promise<{ outcomes: unknown[]; workMs: number[] }>,
    private readonly runOne: (input: unknown, signal: AbortSignal | undefined, owner: TaskOwner) => Promise<unknown>,
  ) {}

  run(input: unknown, signal: AbortSignal | undefined, owner: TaskOwner): Promise<unknown> {
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
      const calls = this.pending.get(owner.customerId);
      const call = { input, signal, owner, resolve: settled(resolve), reject: settled(reject) };
      if (calls) calls.push(call);
      else this.pending.set(owner.customerId, [call]);
      if (this.scheduled) return;
      this.scheduled = true;
      const send = () => {
        this.scheduled = false;
        const pending = this.pending;
        this.pending = new Map();
        for (const calls of pending.values()) {
          for (let i = 0; i < calls.length; i += maxGatheredCalls) void this.dispatch(calls.slice(i, i + maxGatheredCalls));
        }
      };
      // Quiet (nothing running, the last send a lone call): send once the current code has run — calls made
      // together in it still go as one — but without waiting for an event-loop turn. Busy: one turn first, so
      // the jobs a busy worker starts in that turn go together.
      if (this.running === 0 && this.lastSent <= 1) queueMicrotask(send);
      else setImmediate(send);
    });
  }

  private async dispatch(batch: PendingCall[]): Promise<void> {
    const live = batch.filter((item) => !item.signal?.aborted);
    if (live.length === 0) return;
    this.lastSent = live.length;
    this.running++;
    try {
      await this.send(live);
    } finally {
      this.running--;
    }
  }

  private async send(live: PendingCall[]): Promise<void> {
    if (live.length === 1) {
      const [item] = live as [PendingCall];
      return this.runOne(item.input, item.signal, item.owner).then(item.resolve, item.reject);
    }
    const first = live[0] as PendingCall;
    const customer: TaskOwner = { customerId: first.owner.customerId, weight: first.owner.weight, workMs: 0 };
    try {
      const { outcomes, workMs } = await this.runItems(
        live.map((item) => item.input),
        customer,
      );
      live.forEach((item, index) => {
        item.owner.workMs += workMs[index] ?? 0;
        const outcome = outcomes[index] ?? { error: 'evaluation failed: no result' };
        if (isItemError(outcome)) item.reject(new PermanentJobError(outcome.error));
        else item.resolve(outcome);
      });
    } catch (error) {
      for (const item of live) item.reject(error);
    }
  }
}
