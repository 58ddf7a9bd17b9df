import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { queuedJobRefs } from '../db/jobs/find-jobs.js';
import { pausedCustomerIds } from '../db/repositories/customer-pauses.js';
import type { JobQueues } from './queues.js';

/**
 * Pausing a customer (POST /admin/customers/:id/pause) quarantines its work without deleting it. The
 * customer's row is the record (`customers.paused_at`); every worker process keeps the set of paused
 * customers in memory, read from PostgreSQL every `refreshMs`, and a worker that takes a paused customer's
 * job moves it back to BullMQ's delayed set for `pausedJobDelayMs` before marking it active: the row stays
 * `queued`, nothing runs, nothing is lost, and the check costs the hot path one Set lookup. The API also
 * publishes each pause and resume (`customerPauseChannel`), which workers apply at once. Submits are still
 * accepted (and counted by the admission caps), so a paused customer's clients see no new errors.
 * On resume the API promotes the set-aside jobs at once.
 */
export const pausedJobDelayMs = 30_000;
/** How often a worker reads the paused customers again. */
export const pauseRefreshMs = 2000;

/** The paused customers as a worker sees them, at most `refreshMs` old. */
export class PausedCustomers {
  private ids = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly em: EntityManager,
    private readonly logger: Logger,
    /** How often the set is read again. Default 2 s. */
    private readonly refreshMs = pauseRefreshMs,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  /** A message of `customerPauseChannel` (`pause:<id>`, `resume:<id>`): applied at once, ahead of the next read. */
  apply(message: string): void {
    const [action, customerId] = message.split(':');
    if (!customerId) return;
    const ids = new Set(this.ids);
    if (action === 'pause') ids.add(customerId);
    else ids.delete(customerId);
    this.ids = ids;
  }

  has(customerId: string): boolean {
    return this.ids.size > 0 && this.ids.has(customerId);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      this.ids = new Set(await pausedCustomerIds(this.em.fork()));
    } catch (error) {
      // PostgreSQL away: keep the last known set (the jobs that would run cannot record their outcome anyway).
      this.logger.warn({ err: error }, 'could not read the paused customers; keeping the last known set');
    }
  }
}

/** Most jobs a resume promotes at once; the rest run when their delay ends (at most `pausedJobDelayMs`). */
const maxPromoted = 10_000;

/**
 * Moves a resumed customer's set-aside jobs (delayed in BullMQ, `queued` in PostgreSQL) back to waiting.
 * Answers how many. (A worker that has not heard of the resume yet sets a job aside again; the route calls
 * this once more after the workers' refresh interval.)
 */
export async function releasePausedJobs(em: EntityManager, queues: JobQueues, customerId: string): Promise<number> {
  let promoted = 0;
  for (const ref of await queuedJobRefs(em, customerId, maxPromoted)) {
    const job = await queues.forJob(ref.type, ref.id).getJob(ref.queueJobId ?? ref.id);
    if (job && (await job.isDelayed())) {
      await job.promote().catch(() => undefined); // raced with its own delay ending: it is waiting already
      promoted++;
    }
  }
  return promoted;
}
