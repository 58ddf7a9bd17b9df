import type { Job } from 'bullmq';
import type { JobDefinition } from '../jobs/define-job.js';
import { findBundleMembers } from '../db/jobs/find-jobs.js';
import {
  bundleOutcomesField,
  type BundleMember,
  type BundleOutcomes,
  type BundleReturnValue,
  type QueuedBundleData,
} from '../queue/bundles.js';
import { eventStreamMaxLen, type QueuedJobData } from '../queue/queues.js';
import { errorText, type AttemptJob, type AttemptRunner, type ProcessorDeps } from './processor.js';
import { eachAtMost } from '../lib/each-at-most.js';

/** A member to run again on its own: its attempts so far and what its own BullMQ job carries. */
export interface HandOff {
  id: string;
  type: string;
  customerId: string;
  payload: unknown;
  hasWebhookUrl: boolean;
  /** Attempts spent (the failed one included). */
  attempt: number;
  maxAttempts: number;
  /** Wait before the next attempt, in ms (the type's exponential backoff). */
  delayMs: number;
}

export interface BundleDeps {
  /** Members running in this process now, by id: a cancel of one aborts it (the workers' cancel channel). */
  running: Map<string, AbortController>;
  /** Enqueues a member that failed an attempt with attempts left, alone under its own id (queue/submit-job.ts `enqueueAlone`). */
  handOff(member: HandOff): Promise<void>;
  /**
   * Every member of the bundle has run or been skipped; `stored`: their outcomes are stored (else BullMQ runs
   * the bundle again). Fair sharing charges a bundle it held whole here, and the bundle's BullMQ job is handed
   * back once what that released is in BullMQ.
   */
  settled?(bundle: Job<QueuedBundleData>, stored: boolean): Promise<void> | void;
}

/** A bundle's member, as an attempt and the lifecycle hooks see it: its own id, data and attempts; its bundle's queue. */
class MemberJob implements AttemptJob {
  constructor(
    readonly carrier: Job<QueuedBundleData>,
    readonly id: string,
    readonly data: QueuedJobData,
    readonly attemptsMade: number,
    readonly opts: { attempts: number },
  ) {}

  get queueQualifiedName(): string {
    return this.carrier.queueQualifiedName;
  }

  get timestamp(): number {
    return this.carrier.timestamp;
  }

  /** A member's progress is its row's (the state writer's `markProgress`); BullMQ holds none for it. */
  async updateProgress(): Promise<void> {}
}

// `delayed`: a delayed job fair sharing released once due, in a bundle its release call made (release.lua).
const runnable = new Set(['queued', 'delayed', 'active']);

/**
 * Members of one bundle running at once. Their tasks share the worker's pool queue with every other job's: all
 * 50 of each of a worker's bundles at once put thousands of tasks ahead of another customer's next job (fair
 * sharing's B waited ~100 ms behind them). A few at a time still fill the group-committed state writes.
 */
const membersAtOnce = 8;

function memberData(customerId: string, member: BundleMember): QueuedJobData {
  const data: QueuedJobData = { customerId };
  if (member.cacheMissed) data.cacheMissed = true;
  if (member.hasWebhookUrl) data.hasWebhookUrl = true;
  if (member.notify) data.notify = true;
  return data;
}

/**
 * Runs a bundle (queue/bundles.ts): reads its members' rows in one select, then runs every member whose row is
 * still queued or active (not cancelled, not finished by an earlier run of this bundle) at once, each as an
 * attempt of its own. A member that fails with attempts left is handed off to run again alone. Each stored
 * outcome is announced on the queue's event stream under the member's id (`completed`, `failed`), as BullMQ
 * does for a job of its own, so event streams (SSE) follow members too. Every member's outcome goes into the
 * bundle's hash for the sweeper (`bundleOutcomesField`). If storing an outcome failed, throws after the others
 * have run: BullMQ runs the bundle again, and only members whose rows are not final run again (that run's
 * outcomes replace the first's: a member final in PostgreSQL needs none).
 */
export async function runBundle(
  definition: JobDefinition,
  deps: ProcessorDeps,
  bundles: BundleDeps,
  runAttempt: AttemptRunner,
  job: Job<QueuedBundleData>,
  signal: AbortSignal | undefined,
): Promise<BundleReturnValue> {
  const { customerId, members } = job.data;
  const rows = await findBundleMembers(
    deps.orm.em.fork(),
    members.map((member) => member.id),
    members.filter((member) => member.payloadInRow).map((member) => member.id),
  );
  const outcomes: BundleOutcomes = {};
  const events: Array<[event: 'completed' | 'failed', id: string]> = [];
  let storeFailure: unknown = null;
  // One listener on the bundle's signal (a shutdown's hand-back) aborts every member it is running.
  const controllers = new Set<AbortController>();
  const abortAll = () => {
    for (const controller of controllers) controller.abort(signal?.reason);
  };
  signal?.addEventListener('abort', abortAll, { once: true });
  await eachAtMost(membersAtOnce, members, async (member) => {
    const row = rows.get(member.id);
    // Not started when the bundle was handed back (shutdown): it stays queued for the bundle's next run.
    if (!row || !runnable.has(row.state) || signal?.aborted) return;
    const controller = new AbortController();
    controllers.add(controller);
    bundles.running.set(member.id, controller);
    const payload = member.payloadInRow ? row.payload : member.payload;
    try {
      const memberJob = new MemberJob(job, member.id, memberData(customerId, member), row.attemptsMade, { attempts: row.maxAttempts });
      const end = await runAttempt(memberJob, payload, controller.signal);
      if (end.state === 'completed') {
        outcomes[member.id] = { r: end.returnValue };
        events.push(['completed', member.id]);
      } else if (end.final) {
        outcomes[member.id] = { e: errorText(end.error), a: end.attempt };
        events.push(['failed', member.id]);
      } else {
        outcomes[member.id] = { h: 1 };
        await bundles
          .handOff({
            id: member.id,
            type: definition.name,
            customerId,
            payload,
            hasWebhookUrl: member.hasWebhookUrl === true,
            attempt: end.attempt,
            maxAttempts: row.maxAttempts,
            delayMs: definition.queue.backoffMs * 2 ** (end.attempt - 1),
          })
          .catch((error: unknown) =>
            // Its row is queued and its bundle says "handed off": the sweeper enqueues it alone.
            deps.logger.warn({ err: error, jobId: member.id }, 'could not enqueue a retry of a bundled job; the sweeper will'),
          );
      }
    } catch (error) {
      storeFailure ??= error;
    } finally {
      controllers.delete(controller);
      bundles.running.delete(member.id);
    }
  });
  signal?.removeEventListener('abort', abortAll);
  try {
    await recordOutcomes(deps, job, outcomes, events);
  } catch (error) {
    storeFailure ??= error;
  }
  // Handed back (shutdown): it runs again, and is charged then.
  await bundles.settled?.(job, storeFailure === null && !signal?.aborted);
  if (storeFailure !== null) throw storeFailure;
  return { members: members.length, ran: Object.keys(outcomes).length } satisfies BundleReturnValue;
}

/**
 * In one pipeline (every key shares the queue's hash tag): the outcomes into the bundle's job hash, for the
 * sweeper, and one XADD a member onto the queue's event stream. Throws when the outcomes were not stored:
 * BullMQ runs the bundle again, and its members whose rows are final are skipped.
 */
async function recordOutcomes(
  deps: ProcessorDeps,
  job: Job<QueuedBundleData>,
  outcomes: BundleOutcomes,
  events: ReadonlyArray<[string, string]>,
): Promise<void> {
  const queueKey = job.queueQualifiedName;
  const pipeline = deps.redis.pipeline().hset(`${queueKey}:${job.id as string}`, bundleOutcomesField, JSON.stringify(outcomes));
  for (const [event, id] of events) {
    // As BullMQ writes them: a reader's QueueEvents JSON-parses a `completed` event's `returnvalue`, and an entry
    // without one ended its read loop for good (every stream on the queue in that API process went deaf). The
    // results stay in PostgreSQL; the event only says the member finished (api/job-waiter.ts reads its jobId).
    if (event === 'completed')
      pipeline.xadd(`${queueKey}:events`, 'MAXLEN', '~', eventStreamMaxLen, '*', 'event', event, 'jobId', id, 'returnvalue', 'null');
    else pipeline.xadd(`${queueKey}:events`, 'MAXLEN', '~', eventStreamMaxLen, '*', 'event', event, 'jobId', id);
  }
  const results = (await pipeline.exec()) ?? [];
  const [stored] = results;
  if (!stored || stored[0]) throw stored?.[0] ?? new Error(`bundle ${job.id as string}: its outcomes were not stored`);
  if (results.some(([error]) => error)) deps.logger.warn({ bundleId: job.id }, 'could not announce bundled jobs on the event stream');
}
