import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../../lib/redis.js';
import type { QueuedJobHints } from '../queues.js';

/**
 * Fair sharing of a queue shard between customers (docs/design/queues-and-storage.md §2): the backlog
 * waits in PostgreSQL, each shard releases a bounded window of estimated work to BullMQ, and what waits
 * beyond it is held as ids in per-customer lanes, released in virtual-time order (start-time fair
 * queueing, weighted by tier, charged in measured worker time). The state changes are the Lua scripts
 * beside this file (KEYS and ARGV in shared.lua's header); this module loads them and types their calls.
 *
 * Everything is per shard: `queueKey` is the BullMQ queue's qualified name (`<prefix>:<queue>`, e.g.
 * `chrysalis:{invoke-3}`, `Queue.qualifiedName`), whose hash tag every key here shares.
 */

export interface FairShareOptions {
  /** Estimated worker ms released per shard before jobs are held (FAIR_WINDOW_MS). Default 50. */
  windowMs?: number;
  /** Jobs a shard may have in flight whatever the window says (≥ the shard worker's concurrency). Default 2. */
  minInflight?: number;
  /**
   * Most jobs a shard may have in flight (released, unfinished), however little their estimated work; 0:
   * no cap. Bounds how many jobs a newly released one waits behind in BullMQ. Default 0. Not wired to the
   * platform yet: 2 × the shard's concurrency cut the fairness bench's drain rate to ~0.35 of FIFO under load.
   */
  maxInflight?: number;
  /** Most released, unfinished jobs per customer and shard (FAIR_MAX_RELEASED_PER_CUSTOMER); 0: no cap. Default 256. */
  maxReleasedPerCustomer?: number;
  /**
   * Worker ms charged for every job on top of its measured work (FAIR_BASE_COST_MS): what a job costs a
   * worker besides its tasks (BullMQ moves, state write, release). Without it a cheap invoke (microseconds of
   * task time) hardly moves its customer's virtual time, and the window fills with hundreds of them. Default 1.
   */
  baseCostMs?: number;
  /** Most measured work one job is charged, in ms (FAIR_MAX_CHARGE_MS): damps an outlier (a GC pause, a stalled wall-time job). Default 5,000. */
  maxChargeMs?: number;
  /** Estimated worker ms of a job of a customer whose cost was never measured here. Default 5. */
  defaultCostMs?: number;
  /** Weight of the newest measurement in a customer's cost estimate (EWMA). Default 0.2. */
  costAlpha?: number;
  /** Most jobs one call releases, promotes or repairs (bounds a script's run time). Default 1000. */
  maxPerCall?: number;
  /** An id released this recently is left alone by relane and reconcile (its BullMQ add may be under way), in ms. Default 10,000. */
  graceMs?: number;
  /**
   * Most jobs of one customer a release call puts into one BullMQ job (a bundle, queue/bundles.ts:
   * JOB_BUNDLE_SIZE); 1: every job alone. Default 1.
   */
  bundleSize?: number;
  /** The clock, in epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** A job entering a shard, after its row is inserted. */
export interface AdmittedJob {
  id: string;
  customerId: string;
  /** The customer's tier weight (`fairWeight`). */
  weight: number;
  /** Order within the customer's lane: 0 (none) first, then 1, 2, … (as BullMQ's priority). Default 0. */
  priority?: number;
  /** Submission order within a priority (< 2^32). Default `laneSeq(id)`. */
  seq?: number;
  /** When a delayed job becomes due (epoch ms); absent or past: not delayed. */
  delayUntil?: number;
  /** What the submitter knows (`QueuedJobHints`), packed (`packHints`), handed back when the job is released. */
  hints?: string;
  /**
   * Jobs the entry stands for: a bundle held whole (queue/bundles.ts `fairEntry`) is estimated, counted against
   * its customer's cap and charged as its members, not as one job. Default 1.
   */
  jobs?: number;
}

/**
 * A job `relane` checks: as admitted, and the bundle its row names (queue/bundles.ts), if any. A member of a
 * bundle released as one entry (`fairEntry`) within the grace is on its way to BullMQ, so it is left alone.
 */
export type RelanedJob = Omit<AdmittedJob, 'hints' | 'jobs'> & { bundleId?: string | null };

/** How `relane` is asked. */
export interface RelaneOptions {
  /**
   * The sweeper pass asking (unique per pass): a lane list this pass rebuilt from empty on an earlier page is
   * not taken as holding the next pages' jobs (relane.lua). Default: none.
   */
  pass?: string;
  /** The caller knows the jobs are not held (it just took them out of BullMQ): no lane is taken as holding them. */
  known?: boolean;
}

/** A job that finished in a shard. */
export interface FinishedJob {
  id: string;
  customerId: string;
  /** Measured worker time in ms; absent when the job did not run (its row was no longer releasable). */
  workMs?: number;
  /**
   * Jobs it ran: a bundle held and released as one entry (queue/bundles.ts `fairEntry`) is charged the base cost
   * once per member it ran, and its customer's cost per job is measured as its work over them. Default 1.
   */
  jobs?: number;
}

/** A held job released now: add it to BullMQ (its payload comes from its row). */
export interface ReleasedJob {
  id: string;
  customerId: string;
  /** The hints given at admission, packed (`unpackHints` reads them); '' when none. */
  hints: string;
  /** Its customer still has jobs held in this shard: it joins the back of BullMQ's wait list, else the front (`fairQueueFront`). */
  backlogged: boolean;
  /**
   * The bundle to carry it (queue/bundles.ts) when the call released more than one job of its customer and
   * `bundleSize` allows; absent otherwise. Reconcile looks for this BullMQ job when the job has none of its own.
   */
  bundleId?: string;
}

/** What a release call did, and what the shard looks like after it. */
export interface ReleaseOutcome {
  /** The held jobs released now. */
  released: ReleasedJob[];
  /** The shard's released, unfinished jobs. */
  inflight: number;
  /** The shard's backlogged customers (lanes). */
  lanes: number;
  /**
   * How many finished jobs the dispatcher may gather before its next release call without idling the shard's
   * workers: half of what is in flight beyond the shard's minimum (its worker concurrency), at least 1.
   */
  gather: number;
}

export interface FairShare {
  /**
   * Admits a chunk of accepted jobs; returns the ids to add to BullMQ now (the rest are held). With `atOnceOnly`,
   * only the jobs released at once enter the shard and the rest are left out (neither held nor delayed): a
   * submitter's probe while its row is being inserted (admit.lua).
   */
  admit(queueKey: string, jobs: readonly AdmittedJob[], options?: { atOnceOnly?: boolean }): Promise<string[]>;
  /**
   * Charges finished jobs and releases the next held ones while the window has room (none finished: a tick);
   * answers them with the shard's state after it (`ReleaseOutcome`): what the dispatcher needs to batch its next call.
   */
  releaseBatch(queueKey: string, finished: readonly FinishedJob[]): Promise<ReleaseOutcome>;
  /**
   * Takes a cancelled job out of its lane; false when it was not held (already released, or unknown). With
   * `unsent` (a job released by an `atOnceOnly` admission whose row was not stored, so never added to BullMQ),
   * a released job leaves the in-flight accounting too; its estimated charge stays with its customer.
   */
  withdraw(queueKey: string, id: string, customerId: string, options?: { unsent?: boolean }): Promise<boolean>;
  /**
   * Puts jobs that are in neither BullMQ, a lane nor `delayed` back into their lanes; returns their ids. A job
   * without a priority counts as held while its customer's lane list has entries (`RelaneOptions`).
   */
  relane(queueKey: string, jobs: readonly RelanedJob[], options?: RelaneOptions): Promise<string[]>;
  /** Drops in-flight ids whose BullMQ job is finished or gone and recounts the window; returns how many. */
  reconcile(queueKey: string): Promise<number>;
  /** Pauses (or resumes) a customer in a shard: its held jobs stay in its lane, none is released, until resumed. */
  setPaused(queueKey: string, customerId: string, paused: boolean): Promise<void>;
  /** Replaces a shard's paused customers with `customerIds` (the record's), repairing a lost or missed write. */
  syncPaused(queueKey: string, customerIds: readonly string[]): Promise<void>;
}

/** The Redis keys of a shard's fair sharing by name, in the scripts' KEYS order (shared.lua). */
const keyNames = [
  'lanes',
  'lane',
  'inflight',
  'released',
  'cost',
  'meta',
  'delayed',
  'info',
  'vt',
  'weight',
  'count',
  'queue',
  'paused',
] as const;
export type FairShareKeyName = (typeof keyNames)[number];

/** The Redis keys of a shard's fair sharing, in the scripts' KEYS order (shared.lua). */
export function fairShareKeys(queueKey: string): string[] {
  return keyNames.map((name) => fairShareKey(queueKey, name));
}

/** One of a shard's fair-sharing keys (`lane` is the prefix of each customer's lane; `queue` the shard queue's). */
export function fairShareKey(queueKey: string, name: FairShareKeyName): string {
  if (name === 'queue') return `${queueKey}:`;
  return `${queueKey}:fair:${name === 'lane' ? 'lane:' : name}`;
}

/** The weights `customers` last submitted with on a shard (1 for one never seen), in one HMGET. */
export async function storedWeights(
  redis: Pick<RedisClient, 'hmget'>,
  queueKey: string,
  customers: readonly string[],
): Promise<Map<string, number>> {
  if (customers.length === 0) return new Map();
  const stored = await redis.hmget(fairShareKey(queueKey, 'weight'), ...customers);
  return new Map(customers.map((customer, i) => [customer, Number(stored[i]) || 1]));
}

const scripts = ['admit', 'release', 'withdraw', 'relane', 'reconcile'] as const;
type ScriptName = (typeof scripts)[number];
type Call = (...keysAndArgs: Array<string | number>) => Promise<unknown>;

const readScript = (name: string) => readFileSync(new URL(`./${name}.lua`, import.meta.url), 'utf8');
let sources: Record<ScriptName, string> | undefined;

/** Registers the scripts on a client (once) and returns their calls. */
function commandsOf(redis: RedisClient): Record<ScriptName, Call> {
  if (!sources) {
    const shared = readScript('shared');
    sources = Object.fromEntries(scripts.map((name) => [name, `${shared}\n${readScript(name)}`])) as Record<ScriptName, string>;
  }
  const client = redis as unknown as Record<string, Call>;
  const numberOfKeys = fairShareKeys('').length;
  const commands = {} as Record<ScriptName, Call>;
  for (const name of scripts) {
    const command = `fairShare${name[0]!.toUpperCase()}${name.slice(1)}`;
    if (typeof client[command] !== 'function') redis.defineCommand(command, { numberOfKeys, lua: sources[name] });
    commands[name] = (...keysAndArgs) => client[command]!(...keysAndArgs);
  }
  return commands;
}

/** A UUIDv7's creation second: jobs of one priority leave their lane in submission order (ties by id, which sorts by time). */
export function laneSeq(id: string): number {
  const millis = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return Number.isFinite(millis) ? Math.floor(millis / 1000) % 2 ** 32 : 0;
}

const laneScore = (job: Pick<AdmittedJob, 'id' | 'priority' | 'seq'>) =>
  String((job.priority ?? 0) * 2 ** 32 + (job.seq ?? laneSeq(job.id)));

/** Hints that are flags (true or absent), by the letter a held job's lane entry carries for each. */
const hintFlags: Readonly<Record<string, string>> = { cacheMissed: 'm', notify: 'n', hasWebhookUrl: 'w' };
const flagHints: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(hintFlags).map(([hint, flag]) => [flag, hint]));

/**
 * A job's hints as a lane keeps them: '' for none; `!` and a letter per flag when every hint is a known flag
 * set to true (`!m`: cacheMissed), which rides on the job's lane entry at a byte a flag; else JSON, kept
 * beside the lane (`info`, ~130 bytes a job).
 */
export function packHints(hints: Readonly<QueuedJobHints & { hasWebhookUrl?: boolean }>): string {
  const values = hints as Readonly<Record<string, unknown>>;
  for (const name in values) {
    const value = values[name];
    if (value !== undefined && (value !== true || hintFlags[name] === undefined)) return JSON.stringify(hints);
  }
  // Letters in `hintFlags` order, so a job's entry is one of few strings (withdraw.lua tries each).
  let packed = '!';
  for (const name in hintFlags) if (values[name] === true) packed += hintFlags[name];
  return packed === '!' ? '' : packed;
}

/** Every flag letter, in the order `packHints` writes them. */
const hintFlagLetters = Object.values(hintFlags).join('');

/** The hints `packHints` packed. */
export function unpackHints(packed: string): QueuedJobHints {
  if (packed === '') return {};
  if (!packed.startsWith('!')) return JSON.parse(packed) as QueuedJobHints;
  const hints: Record<string, boolean> = {};
  for (const flag of packed.slice(1)) {
    const name = flagHints[flag];
    if (name) hints[name] = true;
  }
  return hints as QueuedJobHints;
}

/** The weight of a tier in `weights` (FAIR_WEIGHTS); 1 for a tier it does not name. */
export function fairWeight<Tier extends string>(tier: Tier, weights: Partial<Record<Tier, number>>): number {
  return weights[tier] ?? 1;
}

/**
 * BullMQ options of a released job whose customer has nothing held in its shard (a single submit released at
 * once, or a lane's last job): it goes to the front of the shard's wait list. Jobs released from a backlogged
 * lane join the back, so a customer without a backlog does not wait behind the window's worth of another's
 * jobs. Bounded: every such job counts in the window, and while the window is full nothing is released.
 */
export const fairQueueFront = { lifo: true } as const;

/**
 * What fair sharing charges a finished job: the base cost plus its measured work, capped (`FairShareOptions`);
 * for a bundle entry of `jobs` members, that per member.
 */
export function chargeOf(workMs: number, options: Pick<FairShareOptions, 'baseCostMs' | 'maxChargeMs'> = {}, jobs = 1): number {
  const members = jobsOf(jobs);
  return members * (options.baseCostMs ?? 1) + Math.min(Math.max(workMs, 0), members * (options.maxChargeMs ?? 5000));
}

/** The jobs an entry stands for: 1 unless it says more (0, a negative or no number is 1, never a free entry). */
const jobsOf = (jobs: number | undefined): number => (jobs !== undefined && jobs > 1 ? Math.floor(jobs) : 1);

export function createFairShare(redis: RedisClient, options: FairShareOptions = {}): FairShare {
  const commands = commandsOf(redis);
  const now = options.now ?? Date.now;
  const minInflight = options.minInflight ?? 2;
  const settings = [
    options.windowMs ?? 50,
    minInflight,
    options.maxReleasedPerCustomer ?? 256,
    options.defaultCostMs ?? 5,
    options.costAlpha ?? 0.2,
    options.maxPerCall ?? 1000,
    options.graceMs ?? 10_000,
    options.maxInflight ?? 0,
  ];
  const call = (name: ScriptName, queueKey: string, args: Array<string | number>) =>
    commands[name](...fairShareKeys(queueKey), now(), ...settings, ...args);

  const releaseBatch = async (queueKey: string, finished: readonly FinishedJob[]): Promise<ReleaseOutcome> => {
    const args = finished.flatMap((job) => [
      job.id,
      job.customerId,
      job.workMs === undefined ? '' : chargeOf(job.workMs, options, job.jobs),
      jobsOf(job.jobs),
    ]);
    const bundleSize = options.bundleSize ?? 1;
    const tag = bundleSize > 1 ? randomBytes(8).toString('hex') : '';
    const [flat, inflight, lanes] = (await call('release', queueKey, [tag, bundleSize, ...args])) as [string[], number, number];
    const released: ReleasedJob[] = [];
    for (let i = 0; i < flat.length; i += 5) {
      const job: ReleasedJob = { id: flat[i]!, customerId: flat[i + 1]!, hints: flat[i + 2]!, backlogged: flat[i + 3] === '1' };
      if (flat[i + 4]) job.bundleId = flat[i + 4];
      released.push(job);
    }
    return { released, inflight, lanes, gather: Math.max(1, Math.floor((inflight - minInflight) / 2)) };
  };

  return {
    async admit(queueKey, jobs, { atOnceOnly = false } = {}) {
      if (jobs.length === 0) return [];
      const args = jobs.flatMap((job) => [
        job.id,
        job.customerId,
        job.weight,
        laneScore(job),
        job.delayUntil ?? 0,
        job.hints === undefined || job.hints === '{}' ? '' : job.hints,
        jobsOf(job.jobs),
      ]);
      return (await call('admit', queueKey, [atOnceOnly ? 'at-once' : 'hold', ...args])) as string[];
    },
    releaseBatch,
    async withdraw(queueKey, id, customerId, { unsent = false } = {}) {
      return (await call('withdraw', queueKey, [id, customerId, hintFlagLetters, unsent ? '1' : '0'])) === 1;
    },
    async relane(queueKey, jobs, { pass = '', known = false } = {}) {
      if (jobs.length === 0) return [];
      const args = jobs.flatMap((job) => [job.id, job.customerId, job.weight, laneScore(job), job.delayUntil ?? 0, job.bundleId ?? '']);
      return (await call('relane', queueKey, [pass, known ? '1' : '0', ...args])) as string[];
    },
    async reconcile(queueKey) {
      return (await call('reconcile', queueKey, [])) as number;
    },
    async setPaused(queueKey, customerId, paused) {
      const key = fairShareKey(queueKey, 'paused');
      await (paused ? redis.sadd(key, customerId) : redis.srem(key, customerId));
    },
    async syncPaused(queueKey, customerIds) {
      const key = fairShareKey(queueKey, 'paused');
      const replace = redis.multi().del(key);
      if (customerIds.length > 0) replace.sadd(key, ...customerIds);
      await replace.exec();
    },
  };
}
