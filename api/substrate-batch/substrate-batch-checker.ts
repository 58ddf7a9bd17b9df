import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { BulkSubmitRequest, CheckedBulkJob } from '../bulk-jobs.js';
import type { AnonymousCheck } from '../json-text-body.js';
import { transferableOf, type JsonBody } from '../json-body.js';
import { ProblemError } from '../problems.js';
import {
  checkBulkJobs,
  checkJobBatch,
  type BatchInput,
  type Checked,
  type CheckedBatch,
  type CheckedJobBatch,
  type JobBatchInput,
  type PlainProblem,
  type SentBody,
} from './substrate-batch.task.js';

export type { CheckedBatch };

export interface SubstrateBatchCheckerOptions {
  /** Customers' body checks waiting for the thread before the next is refused with 503. Default 16. */
  maxQueue?: number;
  /**
   * Bodies sent without valid credentials read and syntax-checked at once (`anonymousCheck`); past them
   * such a request is answered its 401 unread. Their checks wait beside the customers', never in their
   * places. Default 1.
   */
  anonymousChecks?: number;
}

/** Tasks sent to the checker's thread since it was made, and the anonymous checks it turned away. */
export interface SubstrateBatchCheckerCounts {
  /** Customers' bodies parsed and checked in the thread (`check`, and the large ones of `checkJobBatch` and `checkBulkSubmit`): one task each. */
  batchChecks: number;
  /** Syntax checks of bodies sent without valid credentials. */
  anonymousChecks: number;
  /** Bodies sent without valid credentials and answered at once, unread and unchecked: every place was taken. */
  anonymousTurnedAway: number;
  /** Most places taken at once for bodies sent without valid credentials (being read or checked). */
  anonymousPeak: number;
}

/** Seconds a client is told to wait when the queue is full: about one big batch's check. */
const busyRetryAfterSeconds = 5;

/** What the checker's 503s say of a route's bodies. */
interface Refusals {
  busy: string;
  outOfMemory: string;
}

const substrateBatches: Refusals = {
  busy: 'too many substrate batches being checked; try again shortly',
  outOfMemory: 'the substrate batch checker ran out of memory; try a smaller batch or again shortly',
};
const jobBatches: Refusals = {
  busy: 'too many batches being checked; try again shortly',
  outOfMemory: 'the batch checker ran out of memory; try a smaller batch or again shortly',
};
const bulkSubmits: Refusals = {
  busy: 'too many bulk submits being checked; try again shortly',
  outOfMemory: 'the bulk submit checker ran out of memory; try fewer jobs or again shortly',
};

const unavailable = (detail: string) =>
  new ProblemError('unavailable', detail, { headers: { 'Retry-After': String(busyRetryAfterSeconds) } });

const problemOf = ({ type, detail, extra }: PlainProblem) => new ProblemError(type, detail, extra);

/**
 * Bodies up to this size are parsed and checked on the event loop (`checkJobBatch`, `checkBulkSubmit`): a 60 KB
 * one holds it ~1.4 ms, where its trip through the thread took ~2.5 ms when idle and ~430 ms behind a 15 MB body.
 */
export const inLoopMaxBytes = 64 * 1024;

/** The task module of the running build: `.ts` under tsx and tests, `.js` in dist/. */
const taskFile = fileURLToPath(new URL(`./substrate-batch.task.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The large-body routes' CPU work in one Piscina thread, off the API's event loop: for `POST /substrates/batch`
 * the JSON parse of its (up to 16 MiB) body, the item checks and the CEL compile of each expression; for
 * `POST /batches` and `POST /jobs/bulk` the JSON parse and the checks of a body over `inLoopMaxBytes`; and the
 * syntax check of the bodies sent without valid credentials (`anonymousCheck`, at most `anonymousChecks` at
 * once, beside the customers' queue). The customers' queue is bounded (past it 503 with Retry-After), and a
 * customer has at most one body in the thread's queue at a time:
 * its next waits here until the one before is checked, so another customer's body never waits behind
 * more than one of its bodies (Piscina's own queue is first in, first out). How many bodies a customer
 * may send at once is TIER_MAX_BULK_IN_FLIGHT's (api/concurrency-limits.ts: 429 past it).
 */
export class SubstrateBatchChecker {
  /** Made on first use, so an API process (or a test app) that never takes a batch starts no thread. */
  private pool: Piscina | null = null;
  /** Per customer, the end of its last batch check (its next one starts after it). */
  private readonly lines = new Map<string, Promise<void>>();
  private behind = 0;
  private readonly maxQueue: number;
  private readonly anonymousChecks: number;
  /** Customers' checks sent to the thread and not yet answered (waiting or running). */
  private customerTasks = 0;
  /** Places taken for bodies sent without valid credentials (being read, waiting for the thread or in it). */
  private anonymousTasks = 0;
  private readonly counted: SubstrateBatchCheckerCounts = { batchChecks: 0, anonymousChecks: 0, anonymousTurnedAway: 0, anonymousPeak: 0 };

  constructor(options: SubstrateBatchCheckerOptions = {}) {
    this.maxQueue = options.maxQueue ?? 16;
    this.anonymousChecks = options.anonymousChecks ?? 1;
  }

  private started(): Piscina {
    this.pool ??= new Piscina({
      filename: taskFile,
      // Kept warm once started: a thread made per batch would make each pay its start-up (seconds under tsx).
      minThreads: 1,
      maxThreads: 1,
      // Room for every check this class lets through (customers' and anonymous, even while the thread starts):
      // the bounds are kept by `runForCustomer` and `anonymousCheck`, so an anonymous check never takes a customer's place.
      maxQueue: this.maxQueue + 1 + this.anonymousChecks,
      idleTimeout: 60_000,
      concurrentTasksPerWorker: 1,
      // A 16 MiB body parses to ~100 MB of objects.
      resourceLimits: { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 32 },
      ...(import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {}),
    });
    return this.pool;
  }

  /**
   * One of the `anonymousChecks` places for a body sent without valid credentials, taken before the body is
   * read and held until its syntax is decided in the thread (as body-parser's parser would take it); or
   * null, at once, when all are taken. A stranger's bodies therefore hold at most that many places in the
   * thread, beside the customers' queue: a customer's batch waits behind at most `anonymousChecks` of them,
   * and is never refused for them.
   */
  anonymousCheck(): AnonymousCheck | null {
    if (this.anonymousTasks >= this.anonymousChecks) {
      this.counted.anonymousTurnedAway++;
      return null;
    }
    this.anonymousTasks++;
    this.counted.anonymousPeak = Math.max(this.counted.anonymousPeak, this.anonymousTasks);
    let held = true;
    const release = () => {
      if (held) this.anonymousTasks--;
      held = false;
    };
    return {
      isJson: (body) => {
        this.counted.anonymousChecks++;
        return this.run<JsonBody, boolean>('isJson', body, transferableOf(body), substrateBatches).finally(release);
      },
      release,
    };
  }

  /**
   * The checked batch of `customerId`, its body parsed once, in the thread (malformed JSON answers the 400
   * the JSON parser gave); rejects with the ProblemError the route answers (400, 422, 503).
   */
  async check(customerId: string, body: JsonBody | null): Promise<CheckedBatch> {
    const checked = await this.inLine(customerId, () =>
      this.runForCustomer<BatchInput, Checked<CheckedBatch>>('checkBatch', { customerId, body }, substrateBatches),
    );
    if (!checked.ok) throw problemOf(checked.problem);
    return checked.value;
  }

  /**
   * The payload of the batch job a `POST /batches` body asks for (as JSON text), parsed and checked as the JSON
   * parser, the input guard and the route's schema did, with the request's hash when `hashOf` names its method and
   * path; rejects with the ProblemError the route answers (400, 422, 503).
   */
  checkJobBatch(customerId: string, body: JsonBody | null, hashOf: JobBatchInput['hashOf'] = null): Promise<CheckedJobBatch> {
    return this.checkBody('checkJobBatch', customerId, { body, hashOf }, checkJobBatch, jobBatches);
  }

  /**
   * The jobs of a `POST /jobs/bulk` body, parsed and checked as the JSON parser, the input guard and the route
   * did (api/bulk-jobs.ts checkBulkSubmit); rejects with the ProblemError the route answers (400, 403, 422, 503).
   */
  checkBulkSubmit(customerId: string, request: BulkSubmitRequest, body: JsonBody | null): Promise<CheckedBulkJob[]> {
    return this.checkBody('checkBulkJobs', customerId, { ...request, body }, checkBulkJobs, bulkSubmits);
  }

  /**
   * Starts the thread and loads its module now (an API process's start-up), so the first large body does not
   * wait for that (seconds under tsx: a first `POST /batches` of 10,000 items took 2.1 s instead of 0.7 s).
   */
  async warm(): Promise<void> {
    const body: JsonBody = { bytes: new TextEncoder().encode('{}'), charset: 'utf-8' };
    await this.started()
      .run(body, { name: 'isJson' })
      .catch(() => undefined);
  }

  /** Checks waiting for the thread now. */
  get queued(): number {
    return this.pool?.queueSize ?? 0;
  }

  /** Places taken now for bodies sent without valid credentials (being read, or checked in the thread). */
  get anonymousUnderWay(): number {
    return this.anonymousTasks;
  }

  /** Tasks sent to the thread so far, by kind, and the anonymous checks turned away. */
  get counts(): Readonly<SubstrateBatchCheckerCounts> {
    return { ...this.counted };
  }

  /** Bodies waiting for their customer's body before them to be checked. */
  get waitingBehindOwn(): number {
    return this.behind;
  }

  async close(): Promise<void> {
    await this.pool?.close({ force: true });
    this.pool = null;
  }

  /**
   * Checks a body with `check`: on the event loop when it is at most `inLoopMaxBytes` (nothing to wait for),
   * else as task `name` in the thread, in its customer's line. Both run the same function, so both answer alike.
   */
  private async checkBody<Input extends SentBody, Value>(
    name: string,
    customerId: string,
    input: Input,
    check: (input: Input) => Checked<Value>,
    refusals: Refusals,
  ): Promise<Value> {
    const checked =
      (input.body?.bytes.byteLength ?? 0) <= inLoopMaxBytes
        ? check(input)
        : await this.inLine(customerId, () => this.runForCustomer<Input, Checked<Value>>(name, input, refusals));
    if (!checked.ok) throw problemOf(checked.problem);
    return checked.value;
  }

  /**
   * Runs `run` once the customer's check before it (if any) is done: a customer has at most one check in the
   * thread's queue at a time.
   */
  private inLine<Output>(customerId: string, run: () => Promise<Output>): Promise<Output> {
    const before = this.lines.get(customerId);
    if (before) this.behind++;
    const checked = (before ?? Promise.resolve()).then(() => {
      if (before) this.behind--;
      return run();
    });
    const line = checked.then(
      () => undefined,
      () => undefined,
    );
    this.lines.set(customerId, line);
    void line.then(() => {
      if (this.lines.get(customerId) === line) this.lines.delete(customerId);
    });
    return checked;
  }

  /**
   * A customer's check (task `name`), refused with 503 when `maxQueue` of them wait already (the thread runs one at
   * a time, so one more may be running): counted here, not by the pool's queue, which anonymous checks share.
   */
  private async runForCustomer<Input extends SentBody, Output>(name: string, input: Input, refusals: Refusals): Promise<Output> {
    if (this.customerTasks > this.maxQueue) throw unavailable(refusals.busy);
    this.customerTasks++;
    this.counted.batchChecks++;
    try {
      return await this.run<Input, Output>(name, input, transferableOf(input.body), refusals);
    } finally {
      this.customerTasks--;
    }
  }

  /** Runs task `name`; the memory in `transferList` moves to the thread (the caller must not use it after). */
  private async run<Input, Output>(name: string, input: Input, transferList: ArrayBuffer[], refusals: Refusals): Promise<Output> {
    try {
      return (await this.started().run(input, { name, transferList })) as Output;
    } catch (error) {
      const message = `${messageOf(error)} ${String((error as { code?: string }).code)}`;
      if (/queue is at limit|queue is full|No task queue available/i.test(message)) throw unavailable(refusals.busy);
      if (/ERR_WORKER_OUT_OF_MEMORY|out of memory|heap limit/i.test(message)) throw unavailable(refusals.outOfMemory);
      throw error;
    }
  }
}
