import type { Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { JobStateWriter } from './job-state-writer.js';
import type { HookJob, JobLifecycleHook } from './lifecycle.js';
import type { QueuedJobData } from '../queue/queues.js';

/**
 * The jobs this process holds: from the processor starting until BullMQ has recorded the outcome (its
 * `completed`/`failed` events come after the Redis move), so a job is never handed back twice or after
 * it finished. A bundle's member is held as its bundle (the BullMQ job handed back), and its id is kept with
 * it: a handed-back bundle's members' outcomes are refused too.
 */
export class HeldJobs implements JobLifecycleHook {
  readonly name = 'held-jobs';
  private readonly held = new Map<string, Job>();
  private readonly members = new Map<string, Set<string>>();

  started(job: HookJob): void {
    if (!job.carrier) {
      this.held.set(job.id as string, job as Job<QueuedJobData>);
      return;
    }
    const bundleId = job.carrier.id as string;
    this.held.set(bundleId, job.carrier);
    const members = this.members.get(bundleId);
    if (members) members.add(job.id as string);
    else this.members.set(bundleId, new Set([job.id as string]));
  }

  /** Stops tracking a worker's jobs once BullMQ has stored their outcome. */
  watch(worker: Worker<QueuedJobData>): void {
    const forget = (id: string) => {
      this.held.delete(id);
      this.members.delete(id);
    };
    worker.on('completed', (job) => forget(job.id as string));
    worker.on('failed', (job) => {
      if (job) forget(job.id as string);
    });
  }

  /** The BullMQ jobs held (bundles once each). */
  list(): Job[] {
    return [...this.held.values()];
  }

  /** Every id whose outcome a hand-back of `list()` must refuse: the held jobs' and their started members'. */
  ids(): string[] {
    return [...this.held.keys(), ...[...this.members.values()].flatMap((members) => [...members])];
  }
}

/** What a handed-back job's processor gets from the state writer instead of a stored outcome. */
export class HandedBackError extends Error {
  override name = 'HandedBackError';
}

/**
 * The state writer, able to refuse jobs handed back at shutdown: their processors are aborted, and the
 * failure an aborted processor reports must not become the job's outcome — another worker runs the job
 * again and stores the real one. The refusal rejects, so the processor also skips its lifecycle hooks
 * (no `job.failed` webhook, no failed-job metric) and BullMQ's late move to failed finds no lock.
 */
export class HandBackAwareStateWriter extends JobStateWriter {
  private readonly handedBack = new Set<string>();

  refuse(jobIds: Iterable<string>): void {
    for (const id of jobIds) this.handedBack.add(id);
  }

  override complete(id: string, result: unknown, attemptsMade: number, notify = false): Promise<void> {
    return this.handedBack.has(id) ? this.refused(id) : super.complete(id, result, attemptsMade, notify);
  }

  override fail(id: string, error: string, attemptsMade: number, notify = false): Promise<void> {
    return this.handedBack.has(id) ? this.refused(id) : super.fail(id, error, attemptsMade, notify);
  }

  override retrying(id: string, error: string, attemptsMade: number): Promise<void> {
    return this.handedBack.has(id) ? this.refused(id) : super.retrying(id, error, attemptsMade);
  }

  private refused(id: string): Promise<never> {
    return Promise.reject(new HandedBackError(`job ${id} was handed back to its queue at shutdown`));
  }
}

export interface ShutdownReport {
  /** Whether every active job finished within the deadline. */
  drained: boolean;
  /** Jobs moved back to their queue's wait list because they were still running at the deadline. */
  handedBack: number;
  elapsedMs: number;
}

const delay = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());

/** How long aborted processors get to unwind after their jobs were handed back. */
const unwindMs = 2000;

/**
 * How long a hand-back waits for its jobs' rows to read `queued` again before it moves the jobs anyway: a
 * PostgreSQL that is down must not keep them from other workers. The write goes on; `close()` drains it.
 */
const rowsBackWithinMs = 1000;

/** Puts the rows of `ids`' attempts running here back to `queued` (`markHandedBack`); never rejects. */
function putRowsBack(deps: { writer: HandBackAwareStateWriter; logger: Logger }, ids: readonly string[]): Promise<'stored' | 'failed'> {
  return deps.writer.markHandedBack(ids).then(
    () => 'stored' as const,
    (error: unknown) => {
      deps.logger.warn({ err: error }, 'could not put handed-back jobs back to queued; their rows read active until they run again');
      return 'failed' as const;
    },
  );
}

/**
 * What a hand-back does before moving the held jobs back to wait: their attempts' rows back to `queued`, then
 * their outcomes refused. Rows first, while the jobs are still ours, so that the next worker's `active` write
 * cannot come before this one and be undone by it; refused after, so that a job finishing meanwhile stores its
 * outcome (which the guarded write never overwrites). Returns the jobs to move.
 */
async function letGoOfHeldAttempts(deps: { held: HeldJobs; writer: HandBackAwareStateWriter; logger: Logger }): Promise<Job[]> {
  const putBack = deps.held.ids();
  if ((await Promise.race([putRowsBack(deps, putBack), delay(rowsBackWithinMs)])) === 'timeout')
    deps.logger.warn({ waitedMs: rowsBackWithinMs }, 'handed-back jobs do not read queued yet; handing them back anyway');
  const ids = deps.held.ids();
  deps.writer.refuse(ids);
  // Members a bundle started meanwhile get the same, not awaited: the jobs move now (and most of these have no
  // `active` write out yet, `activeAfterMs`: this only drops it).
  const alreadyPutBack = new Set(putBack);
  const startedMeanwhile = ids.filter((id) => !alreadyPutBack.has(id));
  if (startedMeanwhile.length > 0) void putRowsBack(deps, startedMeanwhile);
  return deps.held.list();
}

/**
 * Stops the workers taking jobs and lets the active ones finish for up to `deadlineMs`. Jobs still
 * running then are handed back explicitly: their rows put back to `queued` as they read before the attempt
 * (BullMQ does not spend it), moved to the front of their queue's wait list (releasing the lock, so another
 * worker takes them at once rather than after stall detection, and without counting a stall), their
 * processors aborted, and whatever those processors then report refused.
 */
export async function closeWorkersWithin(
  workers: Worker<QueuedJobData>[],
  deps: { held: HeldJobs; writer: HandBackAwareStateWriter; logger: Logger },
  deadlineMs: number,
): Promise<ShutdownReport> {
  const started = Date.now();
  const closing = Promise.all(workers.map((worker) => worker.close()));
  if ((await Promise.race([closing, delay(deadlineMs)])) !== 'timeout')
    return { drained: true, handedBack: 0, elapsedMs: Date.now() - started };

  const jobs = await letGoOfHeldAttempts(deps);
  const moved = await Promise.all(
    jobs.map((job) =>
      job.moveToWait(job.token).then(
        () => true,
        (error: unknown) => {
          deps.logger.warn({ err: error, jobId: job.id }, 'could not hand the job back; stall detection will return it');
          return false;
        },
      ),
    ),
  );
  for (const worker of workers) worker.cancelAllJobs('the worker is shutting down; the job was handed back to its queue');
  const handedBack = moved.filter(Boolean).length;
  deps.logger.warn({ handedBack, deadlineMs }, 'active jobs outlived the shutdown deadline; handed them back to their queues');
  await Promise.race([closing, delay(unwindMs)]);
  return { drained: false, handedBack, elapsedMs: Date.now() - started };
}
