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
 * process for up to `maxAgeMs`; jobs this process admits meanwhile are added to its cached count. A count read
 * again (in the background past half that age, or anew once it expired) cannot see the rows of admitted jobs
 * not committed yet, so it is not taken as is: the jobs admitted since the read began are added to it, and so
 * are the jobs in flight when it began — admitted through `admitUntilStored` and not yet `stored()` (or
 * released). Within one process a cap is therefore never passed (a job whose row committed just before the read
 * may be counted twice until the next read: it errs towards refusing). Other processes' admissions are not seen
 * until their rows are: a cap is overshot by at most what other processes admit within `maxAgeMs` — a bound,
 * not an exact quota. (Before the jobs in flight were counted, a background read replaced the cached count
 * with PostgreSQL's figure alone: one process let 6 concurrent submits a wave queue 26 jobs under a cap of 20.)
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

/**
 * What `admitUntilStored` answers: a refusal, or admitted jobs in flight until their submit says how it ended.
 * Only the first call of `stored` or `release` counts (a refused ticket's do nothing), so a caller may end with
 * `stored()` in a `finally` whatever happened before.
 */
export interface AdmissionTicket {
  /** Why the jobs were refused; null when they were admitted. */
  readonly refusal: AdmissionRefusal | null;
  /**
   * The jobs' rows are committed (a count reads them from now on), or the submit ended without them in a
   * way that leaves them counted (an error): either way they are no longer in flight.
   */
  stored(): void;
  /** Not submitted after all (refused for another reason, or a replay that stored no row): given back, as `release`. */
  release(): void;
}

export interface Admission {
  /**
   * Admits `jobs` new jobs for the customer (counting them as queued from now on), or says which cap
   * refuses them. A bulk submit asks for all its jobs at once: all are admitted or none. The caller does
   * not say when the rows are stored: a count read again while they are being inserted may miss them.
   */
  admit(customerId: string, tier: Tier, jobs?: number): Promise<AdmissionRefusal | null>;
  /**
   * As `admit`, for a submit that says when its rows are stored: the admitted jobs stay in flight, added to
   * every count of the customer read meanwhile, until the ticket's `stored()` or `release()`.
   */
  admitUntilStored(customerId: string, tier: Tier, jobs?: number): Promise<AdmissionTicket>;
  /** Gives back jobs admitted by `admit` but not submitted after all (the submit was refused for another reason). */
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
  /** When the counts in use began to be read. */
  at: number;
  /** The counts, once read: admissions and releases change this object, and a count read again sets it anew (in place). */
  counts: Promise<UnfinishedCounts>;
  /** A fresh count is being read to replace this one. */
  refreshing?: boolean;
}

const refused = (refusal: AdmissionRefusal): AdmissionTicket => ({ refusal, stored: () => undefined, release: () => undefined });

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
  /**
   * By customer, the jobs admitted through `admitUntilStored` whose submit has not ended yet (their rows may
   * not be committed): kept apart from `entries`, which may drop a customer meanwhile, and holding only
   * customers with jobs in flight.
   */
  const inFlight = new Map<string, number>();
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
   * Past half its age, a customer's counts are read again in the background and set in place when they
   * arrive: a steady stream of submits then never waits for a recount (it did, once every `maxAgeMs`), and no
   * count older than `maxAgeMs` is ever used. The new queued figure is PostgreSQL's plus what it may not see:
   * the jobs in flight when the read began, and those admitted since (less those given back since).
   */
  function refresh(customerId: string, tier: Tier, entry: Entry, live: UnfinishedCounts): void {
    entry.refreshing = true;
    const at = clock();
    const inFlightAtStart = inFlight.get(customerId) ?? 0;
    const queuedAtStart = live.queued;
    count(customerId, tier).then(
      (counts) => {
        entry.refreshing = false;
        if (entries.get(customerId) !== entry) return;
        live.queued = Math.max(0, counts.queued + inFlightAtStart + (live.queued - queuedAtStart));
        live.active = counts.active;
        entry.at = at;
        put(customerId, entry);
      },
      () => {
        entry.refreshing = false;
      },
    );
  }

  /** The customer's entry: the cached one while fresh, else a new read (which concurrent submits of the customer share). */
  function entryOf(customerId: string, tier: Tier): Entry {
    const now = clock();
    const cached = entries.get(customerId);
    if (cached && now - cached.at <= maxAgeMs) return cached;
    dropStale(now);
    // What the read may not see: the jobs in flight now (those admitted later wait for it and add themselves).
    const inFlightAtStart = inFlight.get(customerId) ?? 0;
    const entry: Entry = {
      at: now,
      counts: count(customerId, tier).then((counts) => ({ queued: counts.queued + inFlightAtStart, active: counts.active })),
    };
    put(customerId, entry);
    entry.counts.catch(() => {
      if (entries.get(customerId) === entry) entries.delete(customerId);
    });
    return entry;
  }

  const giveBack = (customerId: string, jobs: number) => {
    void entries.get(customerId)?.counts.then(
      (counts) => {
        counts.queued = Math.max(0, counts.queued - jobs);
      },
      () => undefined,
    );
  };

  const landed = (customerId: string, jobs: number) => {
    const left = (inFlight.get(customerId) ?? 0) - jobs;
    if (left > 0) inFlight.set(customerId, left);
    else inFlight.delete(customerId);
  };

  /** Admits or refuses; the admitted jobs are in flight until the ticket ends when `untilStored`, else not at all. */
  async function admitJobs(customerId: string, tier: Tier, jobs: number, untilStored: boolean): Promise<AdmissionTicket> {
    let entry = entryOf(customerId, tier);
    let counts = await entry.counts;
    // A read that took longer than `maxAgeMs` may have been replaced meanwhile: count on the entry in use.
    while (entries.get(customerId) !== entry) {
      entry = entryOf(customerId, tier);
      counts = await entry.counts;
    }
    // Read again behind this answer (after its own jobs are counted: a read begun before them must not miss them).
    const refreshLater = () => {
      if (!entry.refreshing && clock() - entry.at > maxAgeMs / 2) refresh(customerId, tier, entry, counts);
    };
    const maxActive = config.tierMaxActive[tier];
    const maxQueued = config.tierMaxQueued[tier];
    const refuse = (cap: AdmissionCap, limit: number, count: number): AdmissionTicket => {
      refreshLater();
      return refused({ cap, tier, limit, count, requested: jobs, retryAfterSeconds: admissionRetryAfterSeconds[cap] });
    };
    if (counts.active >= maxActive) return refuse('active', maxActive, counts.active);
    if (counts.queued + jobs > maxQueued) return refuse('queued', maxQueued, counts.queued);
    // The shared counts object: every later submit in this window sees these jobs too.
    counts.queued += jobs;
    if (untilStored) inFlight.set(customerId, (inFlight.get(customerId) ?? 0) + jobs);
    refreshLater();
    let open = untilStored;
    const end = () => {
      if (!open) return false;
      open = false;
      landed(customerId, jobs);
      return true;
    };
    return {
      refusal: null,
      stored: () => void end(),
      release: () => {
        if (end()) giveBack(customerId, jobs);
      },
    };
  }

  return {
    admitUntilStored: (customerId, tier, jobs = 1) => admitJobs(customerId, tier, jobs, true),
    // Not followed to their rows: counted in the cached figure, and by a read begun after this only once their rows are committed.
    admit: async (customerId, tier, jobs = 1) => (await admitJobs(customerId, tier, jobs, false)).refusal,
    get size() {
      return entries.size;
    },
    release: giveBack,
  };
}

/** What a refusal says, for a problem's detail or a log line. */
export function describeRefusal(refusal: AdmissionRefusal): string {
  const held = refusal.count >= refusal.limit ? `at least ${refusal.count}` : String(refusal.count);
  return refusal.cap === 'active'
    ? `the customer has ${held} running jobs; tier ${refusal.tier} allows ${refusal.limit} (TIER_MAX_ACTIVE)`
    : `the customer has ${held} queued jobs and asked for ${refusal.requested} more; tier ${refusal.tier} allows ${refusal.limit} queued (TIER_MAX_QUEUED)`;
}
