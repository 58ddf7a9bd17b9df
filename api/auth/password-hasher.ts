import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ProblemError } from '../problems.js';
import type { CompareInput, HashInput } from './password.task.js';

export interface PasswordHasherOptions {
  /** Worker threads that hash passwords. Default 1. */
  threads?: number;
  /** Hashes waiting for a thread before the next is refused with 503. Default 32. */
  maxQueue?: number;
}

/** Seconds a client is told to wait when the queue is full: a few hashes' time. */
const busyRetryAfterSeconds = 1;

/** The task module of the running build: `.ts` under tsx and tests, `.js` in dist/. */
const taskFile = fileURLToPath(new URL(`./password.task.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

/**
 * bcrypt in a small Piscina pool, off the API's event loop. The queue is bounded: past it a hash is refused
 * at once with 503 and Retry-After (never waits without bound, never stalls other requests). The pool is made
 * on first use (passwords.ts), so a process that never hashes starts no thread; idle threads do not keep a
 * process alive.
 */
export class PasswordHasher {
  private readonly pool: Piscina;

  constructor(options: PasswordHasherOptions = {}) {
    const threads = options.threads ?? 1;
    this.pool = new Piscina({
      filename: taskFile,
      // Kept warm: a thread that exits when idle makes the next login pay its start-up (seconds under load).
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? 32,
      idleTimeout: 30_000,
      concurrentTasksPerWorker: 1,
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
      ...(import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {}),
    });
  }

  hash(password: string, cost: number): Promise<string> {
    return this.run<HashInput, string>('hash', { password, cost });
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.run<CompareInput, boolean>('compare', { password, hash });
  }

  // As a PoolLike, the pool gauges report it (`pool="passwords"`): how busy bcrypt keeps the API.
  /** Hashes and comparisons waiting for a thread now. */
  get queueSize(): number {
    return this.pool.queueSize;
  }

  get utilization(): number {
    return this.pool.utilization;
  }

  get threads(): readonly unknown[] {
    return this.pool.threads;
  }

  /** Hashes and comparisons done since the pool started. */
  get completed(): number {
    return this.pool.completed;
  }

  async close(): Promise<void> {
    await this.pool.close({ force: true });
  }

  private async run<Input, Output>(name: string, input: Input): Promise<Output> {
    try {
      return (await this.pool.run(input, { name })) as Output;
    } catch (error) {
      if (/queue is at limit|queue is full|No task queue available/i.test(error instanceof Error ? error.message : String(error))) {
        throw new ProblemError('unavailable', 'too many password checks in progress; try again shortly', {
          headers: { 'Retry-After': String(busyRetryAfterSeconds) },
        });
      }
      throw error;
    }
  }
}
