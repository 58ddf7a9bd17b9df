import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import type { Tier } from '../db/entities/service-instance.entity.js';
import { countUnfinishedJobs, type UnfinishedCounts } from '../db/jobs/unfinished-counts.js';

/**
 * Admission control (docs/design/queues-and-storage.md §3): before a submit's INSERT, a customer whose
 * queued jobs (queued or delayed) would pass its tier's `TIER_MAX_QUEUED`, or whose running jobs have
 * reached `TIER_MAX_ACTIVE`, is refused (the API answers 429 with `Retry-After`). Fair sharing orders a
 * backlog; admission keeps it bounded.
 *
 * The counts come from PostgreSQL (the partial index of unfinished rows by customer) and are cached per
 * process for up to `maxAgeMs`; jobs this process admits meanwhile are added to its cached count, so a cap
 * is overshot by at most what other processes admit within that time — a bound, not an exact quota.
 */

/** Which cap refused a submit. */
export type AdmissionCap = 'queued' | 'active';

export interface AdmissionRefusal {
  cap: AdmissionCap;
  tier: Tier;
  /** The tier's cap. */
  limit: number;
  /** The customer's jobs of that kind as last counted (a figure equal to `limit` means at least that many). */
  count: number;
  /** The jobs the refused submit asked for. */
  requested: number;
  /** When to try again: queued jobs drain by the backlog's pace, running ones finish quickly. */
  retryAfterSeconds: number;
}

export interface Admission {
  /**
   * Admits `jobs` new jobs for the customer (counting them as queued from now on), or says which cap
   * refuses them. A bulk submit asks for all its jobs at once: all are admitted or none.
   */
  admit(customerId: string, tier: Tier, jobs?: number): Promise<AdmissionRefusal | null>;
  /** Gives back jobs admitted but not submitted after all (the submit was refused for another reason). */
  release(customerId: string, jobs: number): void;
  /** Customers whose counts this process holds: those counted within the last `maxAgeMs` (and no others for long). */
  readonly size: number;
}

export interface AdmissionOptions {
  /** Longest a customer's counts are reused before PostgreSQL is asked again, in ms. Default 1000. */
  maxAgeMs?: number;
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number;
}

/** `Retry-After` of a refusal, by cap, in seconds. */
export const admissionRetryAfterSeconds: Record<AdmissionCap, number> = { queued: 5, active: 1 };

interface Entry {
  at: number;
  counts: Promise<UnfinishedCounts>;
  /** A fresh count is being read to replace this one. */
  refreshing?: boolean;
}

export function createAdmission(
  em: EntityManager,
  config: Pick<Config, 'tierMaxQueued' | 'tierMaxActive'>,
  options: AdmissionOptions = {},
): Admission {
  const maxAgeMs = options.maxAgeMs ?? 1000;
  const clock = options.now ?? Date.now;
  /**
   * By customer, in the order their counts were read, oldest first (a new read moves its entry to the end): a
   * miss drops the stale ones from the front, so the map holds only the customers of the last `maxAgeMs` and
   * each entry costs one step to drop. (It was pruned only at 10,000 entries, by a scan of all of them that
   * ran on every miss once 10,000 customers were fresh: 1.3 s of CPU per 10,000 misses.)
   */
  const entries = new Map<string, Entry>();
  const put = (customerId: string, entry: Entry) => {
    entries.delete(customerId);
    entries.set(customerId, entry);
  };
  const dropStale = (now: number) => {
    for (const [key, entry] of entries) {
      if (now - entry.at <= maxAgeMs) return;
      entries.delete(key);
    }
  };

  const count = (customerId: string, tier: Tier) =>
    countUnfinishedJobs(em, customerId, { queued: config.tierMaxQueued[tier], active: config.tierMaxActive[tier] });

  /**
   * Past half its age, a customer's counts are read again in the background and replace the old ones
   * when they arrive: a steady stream of submits then never waits for a recount (it did, once every
   * `maxAgeMs`), and no count older than `maxAgeMs` is ever used.
   */
  function refresh(customerId: string, tier: Tier, stale: Entry): void {
    stale.refreshing = true;
    const at = clock();
    count(customerId, tier).then(
      (counts) => {
        if (entries.get(customerId) === stale) put(customerId, { at, counts: Promise.resolve(counts) });
      },
      () => {
        stale.refreshing = false;
      },
    );
  }

  function countsOf(customerId: string, tier: Tier): Promise<UnfinishedCounts> {
    const now = clock();
    const cached = entries.get(customerId);
    if (cached && now - cached.at <= maxAgeMs) {
      if (!cached.refreshing && now - cached.at > maxAgeMs / 2) refresh(customerId, tier, cached);
      return cached.counts;
    }
    dropStale(now);
    // Concurrent submits of one customer share this read.
    const counts = count(customerId, tier);
    const entry: Entry = { at: now, counts };
    put(customerId, entry);
    counts.catch(() => {
      if (entries.get(customerId) === entry) entries.delete(customerId);
    });
    return counts;
  }

  return {
    async admit(customerId, tier, jobs = 1) {
      const counts = await countsOf(customerId, tier);
      const maxActive = config.tierMaxActive[tier];
      const maxQueued = config.tierMaxQueued[tier];
      const refuse = (cap: AdmissionCap, limit: number, count: number): AdmissionRefusal => ({
        cap,
        tier,
        limit,
        count,
        requested: jobs,
        retryAfterSeconds: admissionRetryAfterSeconds[cap],
      });
      if (counts.active >= maxActive) return refuse('active', maxActive, counts.active);
      if (counts.queued + jobs > maxQueued) return refuse('queued', maxQueued, counts.queued);
      // The shared counts object: every later submit in this window sees these jobs too.
      counts.queued += jobs;
      return null;
    },
    get size() {
      return entries.size;
    },
    release(customerId, jobs) {
      void entries.get(customerId)?.counts.then(
        (counts) => {
          counts.queued = Math.max(0, counts.queued - jobs);
        },
        () => undefined,
      );
    },
  };
}

/** What a refusal says, for a problem's detail or a log line. */
export function describeRefusal(refusal: AdmissionRefusal): string {
  const held = refusal.count >= refusal.limit ? `at least ${refusal.count}` : String(refusal.count);
  return refusal.cap === 'active'
    ? `the customer has ${held} running jobs; tier ${refusal.tier} allows ${refusal.limit} (TIER_MAX_ACTIVE)`
    : `the customer has ${held} queued jobs and asked for ${refusal.requested} more; tier ${refusal.tier} allows ${refusal.limit} queued (TIER_MAX_QUEUED)`;
}
