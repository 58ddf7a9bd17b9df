import type { RedisClient } from './redis.js';

/**
 * Lua that spends ARGV[n] points of the per-window count KEYS[k] in rate-limiter-flexible's format (an integer
 * whose TTL is its window, ARGV[m] seconds, so its RateLimiterRedis reads and spends the same count), leaving
 * `consumed` (the count after spending) and `ttl` (ms until the window ends).
 */
export const spendPointsLua = (key: string, points: string, windowSeconds: string): string => `
redis.call('SET', ${key}, 0, 'EX', ${windowSeconds}, 'NX')
local consumed = redis.call('INCRBY', ${key}, ${points})
local ttl = redis.call('PTTL', ${key})
if ttl == -1 then
  redis.call('EXPIRE', ${key}, ${windowSeconds})
  ttl = 1000 * tonumber(${windowSeconds})
end
`;

/** KEYS[1] the count, ARGV[1] points, ARGV[2] window seconds. Returns {consumed, ttl ms}. */
const spendScript = `${spendPointsLua('KEYS[1]', 'ARGV[1]', 'ARGV[2]')}
return {consumed, ttl}`;

/** A per-window count in Redis and the budget it is checked against. */
export interface WindowBudget {
  /** The count's Redis key. */
  key: string;
  windowSeconds: number;
  /** Points a window allows. */
  budget: number;
}

/** A count as an answer shows it: points spent in the window (this request's included) and ms until it ends. */
export interface WindowCount {
  consumed: number;
  msBeforeNext: number;
}

/** What this process knows of one count. */
interface Known {
  /** Redis's count in its last answer. */
  consumed: number;
  /** When the window ends and when Redis last answered (`performance.now()`). */
  endsAt: number;
  heardAt: number;
  /** Points spent here and on their way to Redis, and those not yet sent. */
  sending: number;
  unsent: number;
  /** A send is due on the next timer turn (`sendSoon`). */
  due: boolean;
  /** Settles when the points `sending` holds are counted in Redis (or were not); null before the first send. */
  sent: Promise<void> | null;
}

export interface WindowCountsAheadOptions {
  /** How long Redis's answer stays good enough to spend ahead of it, in ms. Default 1,000. */
  freshMs?: number;
  /** Share of a budget kept for counting in Redis: the last points of a window are never spent ahead. Default 0.1. */
  reserveShare?: number;
  /** Counts this process keeps; past it, those not heard of lately are forgotten. Default 10,000. */
  maxKnown?: number;
}

/** Spending ahead stops this long before the window ends: a point spent then counts in the window Redis sees. */
const windowEndGuardMs = 50;

/** Two answers whose windows end this close together are about one window (their round trips differ, not their windows). */
const sameWindowMs = 1000;

/**
 * Per-window counts spent here first and sent to Redis a moment later, while Redis's last answer (within
 * `freshMs`) plus what this process has spent since leaves more than the reserve of the budget: a customer's
 * steady requests then wait for no Redis round trip for their point (it was half of an authenticated GET's
 * time at rest), and their answers show the count as exactly as before when one API process serves them.
 * Everything near the budget — the last `reserveShare` of a window, a refusal, a first request, a stale or
 * ended window — is counted in Redis before the answer, as before. Sends to one count go one at a time, the
 * points spent meanwhile in the next. Every answer Redis gives for a count (the caller's own script too,
 * through `heard`) updates what is known of it; within a window the highest count answered is the latest.
 *
 * With several API processes, a process does not see what the others spent since its last answer: a burst
 * spread over processes may pass the budget by at most about one reserve per process (each spends ahead at
 * most one reserve, and only while its view leaves a reserve free), and an answer's Remaining may lag the
 * other processes' last points. If a send fails (Redis does not answer), its points and those spent meanwhile
 * are not counted, and the next request asks Redis as before.
 */
export class WindowCountsAhead {
  private readonly known = new Map<string, Known>();
  /** When `forgetStale` last ran (`performance.now()`): a full map is swept at most once per `freshMs`. */
  private sweptAt = -Infinity;
  private readonly freshMs: number;
  private readonly reserveShare: number;
  private readonly maxKnown: number;
  private readonly redis: RedisClient & { windowSpend(key: string, points: number, windowSeconds: number): Promise<[number, number]> };

  constructor(redis: RedisClient, options: WindowCountsAheadOptions = {}) {
    this.freshMs = options.freshMs ?? 1000;
    this.reserveShare = options.reserveShare ?? 0.1;
    this.maxKnown = options.maxKnown ?? 10_000;
    if (!('windowSpend' in redis)) redis.defineCommand('windowSpend', { numberOfKeys: 1, lua: spendScript });
    this.redis = redis as typeof this.redis;
  }

  /**
   * Spends one point here and sends it to Redis off the request's path, when what is known of the count leaves
   * room for it (see the class); null when the caller must count it in Redis first.
   */
  spendHere(count: WindowBudget): WindowCount | null {
    const known = this.known.get(count.key);
    if (!known) return null;
    const now = performance.now();
    const reserve = Math.ceil(count.budget * this.reserveShare);
    const ahead = known.sending + known.unsent;
    const consumed = known.consumed + ahead + 1;
    if (now - known.heardAt > this.freshMs || now >= known.endsAt - windowEndGuardMs) return null;
    if (ahead + 1 > reserve || consumed > count.budget - reserve) return null;
    known.unsent++;
    this.sendSoon(count, known);
    return { consumed, msBeforeNext: known.endsAt - now };
  }

  /** Records a count Redis answered (a caller that spent or gave back points in Redis itself). */
  heard(key: string, consumed: number, msBeforeNext: number): void {
    const now = performance.now();
    const known = this.known.get(key);
    if (known) {
      const endsAt = now + msBeforeNext;
      // Answers can be handled out of the order Redis ran them (a script's answer reaches here through more
      // promises than a send's, and both may come in one read). Within one window a count only grows, so a lower
      // one is the older answer — unless the count was forgotten (a refund lowers it) or a new window began.
      const sameWindow = Math.abs(endsAt - known.endsAt) < sameWindowMs;
      if (sameWindow && known.heardAt !== -Infinity && consumed < known.consumed) return;
      Object.assign(known, { consumed, endsAt, heardAt: now });
      return;
    }
    if (this.known.size >= this.maxKnown) this.forgetStale(now);
    if (this.known.size >= this.maxKnown) return;
    this.known.set(key, { consumed, endsAt: now + msBeforeNext, heardAt: now, sending: 0, unsent: 0, due: false, sent: null });
  }

  /**
   * For a caller about to count a request in Redis itself (it could not be spent here): lets this process's points
   * on their way reach Redis first, then hands over those not sent yet, for the caller to spend with its own — so
   * Redis's answer, which the caller shows as the count, holds every point spent here. A number (0 mostly) when
   * nothing is on its way; otherwise a promise, one send's round trip at most in practice (near the budget nothing
   * more is spent ahead).
   */
  takeAhead(key: string): number | Promise<number> {
    const known = this.known.get(key);
    if (!known) return 0;
    if (known.sending > 0 && known.sent) return known.sent.then(() => this.takeAhead(key));
    const unsent = known.unsent;
    known.unsent = 0;
    return unsent;
  }

  /**
   * Forgets Redis's last answer for a count (its points were spent or given back in Redis by other means): the
   * next request asks Redis. Points spent here and not yet answered for stay counted and are still sent.
   */
  forget(key: string): void {
    const known = this.known.get(key);
    if (known) known.heardAt = -Infinity;
  }

  /**
   * Sends the points on the next timer turn, while the request that spent them waits for its route's own I/O:
   * sent at once, the command's auto-pipeline (built then, flushed by an immediate queued ahead of the slice that
   * carries the request on, api/loop-slices.ts) ran before the route — ~0.15 ms of a sequential POST /jobs; an
   * immediate of its own still built the pipeline first (~0.05–0.1 ms). The points spent meanwhile go with it.
   */
  private sendSoon(count: WindowBudget, known: Known): void {
    if (known.due) return;
    known.due = true;
    setTimeout(() => {
      known.due = false;
      this.send(count, known);
    }, 0);
  }

  private send(count: WindowBudget, known: Known): void {
    if (known.sending > 0 || known.unsent === 0) return;
    const points = known.unsent;
    known.sending = points;
    known.unsent = 0;
    // An entry with points on their way is never dropped (`forgetStale`), so `known` is still the count's entry.
    known.sent = this.redis.windowSpend(count.key, points, count.windowSeconds).then(
      ([consumed, ttl]) => {
        known.sending = 0;
        this.heard(count.key, consumed, ttl);
        this.send(count, known);
      },
      () => {
        // Not counted (Redis did not answer), and Redis's count is unknown until the next request asks it.
        known.sending = 0;
        known.unsent = 0;
        known.heardAt = -Infinity;
      },
    );
  }

  /** Drops the counts nothing is on its way for and Redis has not answered for lately. */
  private forgetStale(now: number): void {
    if (now - this.sweptAt < this.freshMs) return;
    this.sweptAt = now;
    for (const [key, known] of this.known) {
      if (known.sending + known.unsent === 0 && now - known.heardAt > this.freshMs) this.known.delete(key);
    }
  }
}
