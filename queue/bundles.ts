import type { JobsOptions } from 'bullmq';
import { uuidv7 } from '../lib/uuid.js';
import type { JobDefinition } from '../jobs/define-job.js';
import type { JobQueue, QueuedJobData } from './queues.js';
import { packHints, unpackHints } from './fair-share/fair-share.js';

/**
 * A bundle is one BullMQ job that carries many jobs of one submit: same customer, type and queue, none with a
 * priority or a delay. BullMQ's work per job (add, move to active, move to finished, four stream events: ~37
 * Redis commands) is then spent once per bundle, and the worker runs the members as jobs of their own — each
 * its own row, attempts, outcome, webhooks. Only job types whose jobs are short say so (`queue.bundled`).
 *
 * A member's row names its bundle (`jobs.bundle_id`), which lives on the member's own queue: the sweeper finds
 * it there, and a member is never also enqueued alone unless it was handed off (a retry) or found lost.
 */
export interface BundleMember {
  id: string;
  /** Absent when `payloadInRow`. */
  payload?: unknown;
  payloadInRow?: true;
  cacheMissed?: true;
  hasWebhookUrl?: true;
  /** Someone waits for its outcome (`Prefer: wait`, released by fair sharing): its final write announces it. */
  notify?: true;
}

export interface QueuedBundleData {
  customerId: string;
  members: BundleMember[];
  /**
   * Fair sharing (queue/fair-share) held and released this bundle as one entry of its customer's lane: it is
   * charged once, when it has run, for all of its members' work (`FinishedJob.jobs`). Absent: each member is
   * in flight under its own id (a bundle a release call made of single jobs, or no fair sharing).
   */
  fairEntry?: true;
}

/** A bundle's BullMQ id: never a row id (`isRowId`), and free of `:` (BullMQ refuses custom ids with one). */
export const newBundleId = (): string => `bundle-${uuidv7()}`;

export const isBundleId = (id: string | null | undefined): id is string => typeof id === 'string' && id.startsWith('bundle-');

/** Whether a BullMQ job's data is a bundle's (BullMQ types every job of a queue with the job's data). */
export function isBundleData(data: object): data is QueuedBundleData {
  return Array.isArray((data as Partial<QueuedBundleData>).members);
}

/**
 * What a bundle's run keeps in its job hash (field `bundleOutcomesField`) for the sweeper (design §4): each member's
 * outcome as it was stored, so a member whose row write PostgreSQL lost gets it back. `r`: the result (or
 * `resultInRow`); `e`: the final error; `h`: handed off to run again on its own (a retry), its own BullMQ job says
 * the rest. Not the return value: BullMQ copies that into the `completed` event of the queue's event stream, whose
 * entries the stream's length caps, not their size.
 */
export type BundleOutcomes = Record<string, { r: unknown } | { e: string; a: number } | { h: 1 }>;

/** The bundle's job hash field holding its `BundleOutcomes` (BullMQ uses no such field). */
export const bundleOutcomesField = 'outcomes';

/** A completed bundle's return value: how many members it carried and how many it ran. */
export interface BundleReturnValue {
  members: number;
  ran: number;
}

type BulkJob = { name: string; data: QueuedJobData; opts: JobsOptions & { jobId: string } };

/**
 * Bundle ids for the jobs of one submit, per queue (`queueOf`): consecutive runs of at most `size` jobs that can be
 * bundled share one; a job alone on its queue, or one that cannot be bundled, gets null. Decided before the rows
 * are inserted, which record it.
 */
export function assignBundles<Job>(
  jobs: readonly Job[],
  size: number,
  queueOf: (job: Job) => JobQueue,
  /** Whether the job may travel in a bundle on `queue` (its own; on a fair-shared one the bundle is held and released whole). */
  bundleable: (job: Job, queue: JobQueue) => boolean,
): Array<string | null> {
  const bundles: Array<string | null> = jobs.map(() => null);
  if (size < 2) return bundles;
  const byQueue = new Map<JobQueue, number[]>();
  jobs.forEach((job, index) => {
    const queue = queueOf(job);
    if (!bundleable(job, queue)) return;
    const indexes = byQueue.get(queue);
    if (indexes) indexes.push(index);
    else byQueue.set(queue, [index]);
  });
  for (const indexes of byQueue.values()) {
    for (let start = 0; start < indexes.length; start += size) {
      const run = indexes.slice(start, start + size);
      if (run.length < 2) continue;
      const id = newBundleId();
      for (const index of run) bundles[index] = id;
    }
  }
  return bundles;
}

/** Whether jobs of this definition may be bundled, and JOB_BUNDLE_SIZE allows it. */
export const bundlesJobsOf = (definition: Pick<JobDefinition, 'queue'>, size: number): boolean =>
  definition.queue.bundled === true && size >= 2;

/**
 * The queue's jobs as BullMQ will hold them: members of one bundle (`bundleOf`) folded into one job under the
 * bundle's id, at the place of its first member; the others as they are. One type and customer per call.
 */
export function foldBundles(jobs: readonly BulkJob[], bundleOf: (job: BulkJob) => string | null): Array<BulkJob | BundleJob> {
  const folded: Array<BulkJob | BundleJob> = [];
  const open = new Map<string, BundleJob>();
  for (const job of jobs) {
    const bundleId = bundleOf(job);
    if (bundleId === null) {
      folded.push(job);
      continue;
    }
    let bundle = open.get(bundleId);
    if (!bundle) {
      bundle = {
        name: job.name,
        data: { customerId: job.data.customerId, members: [] },
        opts: { jobId: bundleId, attempts: job.opts.attempts },
      };
      open.set(bundleId, bundle);
      folded.push(bundle);
    }
    // To the front of the wait list when any member goes there (fair sharing's `fairQueueFront`).
    if (job.opts.lifo) bundle.opts.lifo = true;
    bundle.data.members.push(memberOf(job));
  }
  return folded;
}

export type BundleJob = { name: string; data: QueuedBundleData; opts: JobsOptions & { jobId: string } };

/**
 * A bundle held in a fair-shared lane as one entry (`fairEntry`), packed for the lane's `info` hash: its name,
 * attempts and members, without payloads (the worker reads them from the rows) and each member's flags packed
 * as `packHints` packs a job's (`<id>!<letters>`): ~40 bytes a member.
 */
export function packBundleEntry(bundle: BundleJob): string {
  const members = bundle.data.members.map(({ id, payload: _payload, payloadInRow: _payloadInRow, ...flags }) => id + packHints(flags));
  return JSON.stringify({ n: bundle.name, a: bundle.opts.attempts ?? 1, m: members });
}

/** The BullMQ job of a bundle `packBundleEntry` packed, released by fair sharing; null when `packed` is not one. */
export function unpackBundleEntry(id: string, customerId: string, packed: string): BundleJob | null {
  let entry: { n?: unknown; a?: unknown; m?: unknown };
  try {
    entry = JSON.parse(packed) as typeof entry;
  } catch {
    return null;
  }
  if (typeof entry.n !== 'string' || typeof entry.a !== 'number' || !Array.isArray(entry.m)) return null;
  const members = (entry.m as unknown[])
    .filter((member): member is string => typeof member === 'string')
    .map((member) => {
      const bang = member.indexOf('!');
      const flags = bang < 0 ? {} : (unpackHints(member.slice(bang)) as Pick<BundleMember, 'cacheMissed' | 'hasWebhookUrl' | 'notify'>);
      return { id: bang < 0 ? member : member.slice(0, bang), payloadInRow: true as const, ...flags };
    });
  return { name: entry.n, data: { customerId, members, fairEntry: true }, opts: { jobId: id, attempts: entry.a } };
}

function memberOf({ data, opts }: BulkJob): BundleMember {
  const member: BundleMember = { id: opts.jobId };
  if (data.payloadInRow) member.payloadInRow = true;
  else member.payload = data.payload;
  if (data.cacheMissed) member.cacheMissed = true;
  if (data.hasWebhookUrl) member.hasWebhookUrl = true;
  if (data.notify) member.notify = true;
  return member;
}
