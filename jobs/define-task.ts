import { fileURLToPath } from 'node:url';

/**
 * A Piscina task: a function exported by a `*.task.ts` entry module (pure: it imports nothing outside
 * jobs/), run on a worker process's thread pool with a time limit and a heap limit. The job type that
 * runs it declares it (`defineJob({ tasks })`); its processor calls `ctx.runTask(task, input, signal)`,
 * typed by the declaration. Input and Output only type the call.
 */
export interface TaskDeclaration<Input = unknown, Output = unknown> {
  /** Names the task in errors; unique among the registered job types' tasks (a second one fails at start-up). */
  readonly name: string;
  /** Path of the entry module, for the running build: the `.ts` file under tsx and tests, the `.js` one in dist/. */
  readonly path: string;
  /** The export Piscina calls. Default `default`. */
  readonly exportName: string;
  /**
   * For a task that takes an array of another task's inputs and answers per item (that task's output, or
   * `{ error }`): that other task. When this task dies as a whole (time limit, memory), each item runs
   * again alone with it, so one runaway item fails by itself and the rest still succeed. Default none.
   */
  readonly perItem?: TaskDeclaration;
  /**
   * With `perItem`: calls of the per-item task made in one event-loop turn (the jobs a busy worker starts
   * together) go to a thread as one call of this task — one message round trip instead of one each; a
   * lone call still goes alone. Default false.
   */
  readonly gathersPerItemCalls?: boolean;
  /** Never set: carries Input and Output for the compiler. */
  readonly types?: { input: Input; output: Output };
}

export interface TaskOptions {
  name: string;
  /** The declaring module's `import.meta.url`; `file` is resolved against it. */
  module: string;
  /** The entry module without its extension, relative to `module`, e.g. `./evaluate.task`. */
  file: string;
  /** Default `default`. */
  exportName?: string;
  perItem?: TaskDeclaration;
  gathersPerItemCalls?: boolean;
}

/** Declares a task; the file's extension follows the declaring module's (`.ts` under tsx, `.js` once built). */
export function defineTask<Input, Output>(options: TaskOptions): TaskDeclaration<Input, Output> {
  const extension = options.module.endsWith('.ts') ? '.ts' : '.js';
  return {
    name: options.name,
    path: fileURLToPath(new URL(options.file + extension, options.module)),
    exportName: options.exportName ?? 'default',
    ...(options.perItem ? { perItem: options.perItem } : {}),
    ...(options.gathersPerItemCalls ? { gathersPerItemCalls: true } : {}),
  };
}
