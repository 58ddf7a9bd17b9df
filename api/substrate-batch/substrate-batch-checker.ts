import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ProblemError } from '../problems.js';
import type { BatchCheck, BatchInput } from './substrate-batch.task.js';

export interface SubstrateBatchCheckerOptions {
  /** Checks (syntax checks and batch checks) waiting for the thread before the next is refused with 503. Default 16. */
  maxQueue?: number;
}

/** A batch that passed its checks: each item's id in the order sent, the distinct rows as one JSON text. */
export interface CheckedBatch {
  ids: string[];
  rows: string;
}

/** Seconds a client is told to wait when the queue is full: about one big batch's check. */
const busyRetryAfterSeconds = 5;

/** The task module of the running build: `.ts` under tsx and tests, `.js` in dist/. */
const taskFile = fileURLToPath(new URL(`./substrate-batch.task.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * `POST /substrates/batch`'s CPU work in one Piscina thread, off the API's event loop: the JSON parse of
 * its (up to 16 MiB) body, the item checks and the CEL compile of each expression. The queue is bounded
 * (past it 503 with Retry-After), and a customer has at most one batch in the thread's queue at a time:
 * its next waits here until the one before is checked, so another customer's batch never waits behind
 * more than one of its batches (Piscina's own queue is first in, first out). How many batches a customer
 * may send at once is TIER_MAX_BULK_IN_FLIGHT's (api/concurrency-limits.ts: 429 past it).
 */
export class SubstrateBatchChecker {
  /** Made on first use, so an API process (or a test app) that never takes a batch starts no thread. */
  private pool: Piscina | null = null;
  /** Per customer, the end of its last batch check (its next one starts after it). */
  private readonly lines = new Map<string, Promise<void>>();
  private behind = 0;

  constructor(private readonly options: SubstrateBatchCheckerOptions = {}) {}

  private started(): Piscina {
    this.pool ??= new Piscina({
      filename: taskFile,
      // Kept warm once started: a thread made per batch would make each pay its start-up (seconds under tsx).
      minThreads: 1,
      maxThreads: 1,
      maxQueue: this.options.maxQueue ?? 16,
      idleTimeout: 60_000,
      concurrentTasksPerWorker: 1,
      // A 16 MiB body parses to ~100 MB of objects.
      resourceLimits: { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 32 },
      ...(import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {}),
    });
    return this.pool;
  }

  /** Whether `text` is JSON (as body-parser's parser would take it), decided in the checker's thread. */
  isJson(text: string): Promise<boolean> {
    return this.run<string, boolean>('isJson', text);
  }

  /** The checked batch of `customerId`; rejects with the ProblemError the route answers (400, 422, 503). */
  check(customerId: string, text: string | null): Promise<CheckedBatch> {
    const before = this.lines.get(customerId);
    if (before) this.behind++;
    const checked = (before ?? Promise.resolve()).then(() => {
      if (before) this.behind--;
      return this.run<BatchInput, BatchCheck>('checkBatch', { customerId, text });
    });
    const line = checked.then(
      () => undefined,
      () => undefined,
    );
    this.lines.set(customerId, line);
    void line.then(() => {
      if (this.lines.get(customerId) === line) this.lines.delete(customerId);
    });
    return checked.then((result) => {
      if (!result.ok) throw new ProblemError(result.problem.type, result.problem.detail, result.problem.extra);
      return { ids: result.ids, rows: result.rows };
    });
  }

  /** Checks waiting for the thread now. */
  get queued(): number {
    return this.pool?.queueSize ?? 0;
  }

  /** Batches waiting for their customer's batch before them to be checked. */
  get waitingBehindOwn(): number {
    return this.behind;
  }

  async close(): Promise<void> {
    await this.pool?.close({ force: true });
    this.pool = null;
  }

  private async run<Input, Output>(name: string, input: Input): Promise<Output> {
    try {
      return (await this.started().run(input, { name })) as Output;
    } catch (error) {
      const message = `${messageOf(error)} ${String((error as { code?: string }).code)}`;
      if (/queue is at limit|queue is full|No task queue available/i.test(message)) {
        throw new ProblemError('unavailable', 'too many substrate batches being checked; try again shortly', {
          headers: { 'Retry-After': String(busyRetryAfterSeconds) },
        });
      }
      if (/ERR_WORKER_OUT_OF_MEMORY|out of memory|heap limit/i.test(message)) {
        throw new ProblemError('unavailable', 'the substrate batch checker ran out of memory; try a smaller batch or again shortly', {
          headers: { 'Retry-After': String(busyRetryAfterSeconds) },
        });
      }
      throw error;
    }
  }
}
