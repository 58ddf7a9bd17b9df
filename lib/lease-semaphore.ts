import { randomBytes } from 'node:crypto';
import type { RedisClient } from './redis.js';
import { spendPointsLua, type WindowBudget } from './window-counts-ahead.js';

/**
 * Counting semaphores in Redis, shared by every process that uses the same keys: each holder takes a lease
 * (a member of a sorted set scored by its expiry on Redis's clock). Leases are renewed while held and expire
 * when not, so the places of a process that dies free themselves within `leaseMs` (self-healing, no cleanup).
 */
export interface LeaseSemaphoreOptions {
  /** How long a lease lives without renewal, in ms; held leases are renewed every third of it. Default 30,000. */
  leaseMs?: number;
}

/** A place taken in a semaphore. `release` is idempotent and never throws. */
export interface Lease {
  release(): void;
}

/**
 * KEYS[1] the semaphore's sorted set (member: lease token, score: expiry in ms on Redis's clock).
 * ARGV[1] lease ms, ARGV[2] limit, ARGV[3] token, ARGV[4…] tokens released since the last call (see `release`).
 * Drops the released and the expired leases, then takes a place if fewer than `limit` are held.
 * Returns the places held before this call when full as a negative number (-held), else the places held now.
 */
/**
 * Lua shared by both acquire scripts: drops the expired leases of KEYS[1], then sets `held` (places held) and
 * `taken` (whether ARGV[3] took a place, of at most ARGV[2], for ARGV[1] ms).
 */
const takePlace = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
local held = redis.call('ZCARD', KEYS[1])
local taken = held < tonumber(ARGV[2])
if taken then
  redis.call('ZADD', KEYS[1], nowMs + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  held = held + 1
end
`;

const acquireScript = `
if #ARGV >= 4 then redis.call('ZREM', KEYS[1], unpack(ARGV, 4)) end
${takePlace}
if taken then return held end
return -held
`;

/**
 * KEYS[1] the semaphore's sorted set. ARGV[1] lease ms, ARGV[2…] tokens this process holds in it.
 * Pushes their expiry `leaseMs` past now (only those still present: XX). Returns how many were renewed.
 */
const renewScript = `
local now = redis.call('TIME')
local expiry = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return renewed
`;

/**
 * KEYS[1] the semaphore's sorted set, KEYS[2] a per-window counter in rate-limiter-flexible's format (an
 * integer with a TTL, so its RateLimiterRedis reads and spends the same count). Both keys must share a
 * hash tag (one slot on a Redis Cluster). ARGV[1] lease ms, ARGV[2] limit, ARGV[3] token, ARGV[4] points,
 * ARGV[5] window seconds, ARGV[6] the window's budget, ARGV[7…] tokens released since the last call.
 * Spends the points first, whatever follows; past the budget takes no place (but drops the released). Returns {consumed, ttl ms,
 * outcome, held}: outcome 1 a place taken (held: places now), 0 full (held: places held), -1 over budget.
 */
const acquireCountingScript = `${spendPointsLua('KEYS[2]', 'ARGV[4]', 'ARGV[5]')}
if #ARGV >= 7 then redis.call('ZREM', KEYS[1], unpack(ARGV, 7)) end
if consumed > tonumber(ARGV[6]) then return {consumed, ttl, -1, 0} end
${takePlace}
if taken then return {consumed, ttl, 1, held} end
return {consumed, ttl, 0, held}
`;

/**
 * A per-window count that `acquireCounting` spends from in the same step as it takes a place: its key must be in
 * the semaphore's hash tag (see `acquireCounting`); past its budget no place is taken.
 */
export interface WindowCounter extends WindowBudget {
  /** Points this call spends. */
  points: number;
}

/** What `acquireCounting` found: the count after spending, and the place (unless over budget). */
export interface CountedAcquire {
  /** Points spent in the window so far, this call's included. */
  consumed: number;
  /** Until the window ends, in ms. */
  msBeforeNext: number;
  /** A lease; `{ full: held }` when every place was taken; null when over budget (no place tried). */
  place: Lease | { full: number } | null;
}

type ScriptedRedis = RedisClient & {
  leaseAcquire(key: string, leaseMs: number, limit: number, token: string, ...released: string[]): Promise<number>;
  leaseAcquireCounting(
    key: string,
    counterKey: string,
    leaseMs: number,
    limit: number,
    token: string,
    points: number,
    windowSeconds: number,
    budget: number,
    ...released: string[]
  ): Promise<[number, number, number, number]>;
  leaseRenew(key: string, leaseMs: number, ...tokens: string[]): Promise<number>;
};

const unheld: Lease = { release: () => undefined };

/**
 * How long a released lease may stay in Redis as this process's spare, in ms: the next `acquire` in the same
 * semaphore by this process takes a spare over (no command at all), the next `acquireCounting` removes them in
 * its own script (no command of its own: a customer's steady requests cost one Redis command each, not two),
 * else a ZREM removes the spares older than this. Other processes see a place free this much later at most;
 * this process's next take sees it at once. At 5 ms, the spares between a busy customer's answers and its next
 * requests were removed every few milliseconds and taken again by script; 50 ms keeps them for the next.
 */
const spareMs = 50;

/** A released lease kept as a spare (see `spareMs`). */
interface Spare {
  token: string;
  /** `performance.now()` when released. */
  at: number;
}

export class LeaseSemaphores {
  private readonly redis: ScriptedRedis;
  private readonly leaseMs: number;
  /** This process's leases: key → tokens, renewed together. */
  private readonly held = new Map<string, Set<string>>();
  /** This process's `acquire` calls waiting for Redis: key → how many. */
  private readonly taking = new Map<string, number>();
  private readonly processTag = randomBytes(6).toString('hex');
  private sequence = 0;
  private readonly renewTimer: NodeJS.Timeout;
  /** Leases released and not yet removed from Redis, oldest first: key → spares (see `spareMs`). */
  private readonly released = new Map<string, Spare[]>();
  private releaseTimer: NodeJS.Timeout | null = null;

  constructor(
    redis: RedisClient,
    private readonly keyPrefix: string,
    options: LeaseSemaphoreOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.redis = redis as ScriptedRedis;
    if (!('leaseAcquire' in redis)) {
      redis.defineCommand('leaseAcquire', { numberOfKeys: 1, lua: acquireScript });
      redis.defineCommand('leaseRenew', { numberOfKeys: 1, lua: renewScript });
    }
    if (!('leaseAcquireCounting' in redis)) redis.defineCommand('leaseAcquireCounting', { numberOfKeys: 2, lua: acquireCountingScript });
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
  }

  /**
   * Takes a place in semaphore `name` of at most `limit` holders: a lease, or `{ full: held }` when all are
   * taken — at once, without Redis, when this process's own leases and takes fill them or it has a spare
   * (`takeHere`). If Redis does not answer, the caller is let through with a lease that holds nothing (a limit
   * must not turn a Redis hiccup into refusals; the requests fail on their own if Redis is really gone).
   */
  acquire(name: string, limit: number): Promise<Lease | { full: number }> {
    const key = this.keyOf(name);
    const here = this.takeHereByKey(key, limit);
    return here ? Promise.resolve(here) : this.acquireFromRedis(key, limit);
  }

  /**
   * What `acquire` decides without Redis, synchronously (a request's middleware then goes on without a
   * promise): a spare place this process gave back moments ago, `{ full }` when this process alone holds or is
   * taking every place, else undefined (only Redis can tell).
   */
  takeHere(name: string, limit: number): Lease | { full: number } | undefined {
    return this.takeHereByKey(this.keyOf(name), limit);
  }

  private takeHereByKey(key: string, limit: number): Lease | { full: number } | undefined {
    // A customer's burst of 3,000 requests at a limit of 200 then costs 200 scripts, not 3,000, and its
    // refusals no round trip.
    const mine = (this.held.get(key)?.size ?? 0) + (this.taking.get(key) ?? 0);
    if (mine >= limit) return { full: mine };
    // A spare is still held in Redis: hand it on rather than ask Redis for another. A customer's steady
    // requests then cost no Redis command for their places (an enterprise customer's every request had paid a
    // script and its round trip, ~10 % of http-submit's throughput); other processes see the place taken that
    // much longer, which errs on the side of the limit.
    const spare = this.released.get(key)?.pop();
    return spare === undefined ? undefined : this.hold(key, spare.token);
  }

  private async acquireFromRedis(key: string, limit: number): Promise<Lease | { full: number }> {
    const token = this.nextToken();
    const released = this.takeReleased(key);
    this.taking.set(key, (this.taking.get(key) ?? 0) + 1);
    let outcome: number;
    try {
      outcome = await this.redis.leaseAcquire(key, this.leaseMs, limit, token, ...released);
    } catch {
      this.queueRelease(key, released);
      return unheld;
    } finally {
      const left = (this.taking.get(key) ?? 1) - 1;
      if (left > 0) this.taking.set(key, left);
      else this.taking.delete(key);
    }
    return outcome <= 0 ? { full: -outcome } : this.hold(key, token);
  }

  /**
   * `acquire` and a per-window count in one Redis command (one script, run atomically): spends
   * `counter.points` whether or not a place is free, then takes a place unless the window's budget is
   * passed. `counter.key` must carry the same hash tag as this semaphore's key (`${prefix}:${name}`), as
   * both are in one script (a Redis Cluster runs it on one slot). Null if Redis does not answer: the caller
   * decides (nothing was held, and the count may or may not have been spent).
   */
  async acquireCounting(name: string, limit: number, counter: WindowCounter): Promise<CountedAcquire | null> {
    const key = this.keyOf(name);
    const token = this.nextToken();
    const released = this.takeReleased(key);
    let reply: [number, number, number, number];
    try {
      reply = await this.redis.leaseAcquireCounting(
        key,
        counter.key,
        this.leaseMs,
        limit,
        token,
        counter.points,
        counter.windowSeconds,
        counter.budget,
        ...released,
      );
    } catch {
      this.queueRelease(key, released);
      return null;
    }
    const [consumed, msBeforeNext, outcome, held] = reply;
    const place = outcome === 1 ? this.hold(key, token) : outcome === 0 ? { full: held } : null;
    return { consumed, msBeforeNext, place };
  }

  private keyOf(name: string): string {
    return `${this.keyPrefix}:${name}`;
  }

  private nextToken(): string {
    return `${this.processTag}:${++this.sequence}`;
  }

  /** A lease on a place just taken: renewed with this process's others until released. */
  private hold(key: string, token: string): Lease {
    let tokens = this.held.get(key);
    if (!tokens) this.held.set(key, (tokens = new Set()));
    tokens.add(token);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        tokens.delete(token);
        if (tokens.size === 0 && this.held.get(key) === tokens) this.held.delete(key);
        this.queueRelease(key, [token]);
      },
    };
  }

  /** The tokens released in semaphore `key` and not yet removed, for a script that removes them. */
  private takeReleased(key: string): string[] {
    const spares = this.released.get(key);
    if (!spares) return [];
    this.released.delete(key);
    return spares.map((spare) => spare.token);
  }

  private queueRelease(key: string, tokens: string[]): void {
    if (tokens.length === 0) return;
    const at = performance.now();
    let spares = this.released.get(key);
    if (!spares) this.released.set(key, (spares = []));
    for (const token of tokens) spares.push({ token, at });
    this.scheduleFlush(spareMs);
  }

  private scheduleFlush(inMs: number): void {
    if (this.releaseTimer) return;
    this.releaseTimer = setTimeout(() => this.flushReleased(), inMs);
    this.releaseTimer.unref();
  }

  /**
   * Removes the spares older than `spareMs` (all of them when `everySpare`): one ZREM per semaphore, not
   * awaited (a failed one only leaves them to expire); comes back for the younger ones.
   */
  private flushReleased(everySpare = false): void {
    this.releaseTimer = null;
    const now = performance.now();
    let youngest = Infinity;
    for (const [key, spares] of this.released) {
      // Oldest first (released in order, taken over from the end): the old ones are a prefix.
      let old = 0;
      while (old < spares.length && (everySpare || now - spares[old]!.at >= spareMs)) old++;
      if (old > 0) {
        const tokens = spares.splice(0, old).map((spare) => spare.token);
        this.redis.zrem(key, ...tokens).catch(() => undefined);
      }
      if (spares.length === 0) this.released.delete(key);
      else youngest = Math.min(youngest, spares[0]!.at);
    }
    if (youngest !== Infinity) this.scheduleFlush(Math.max(1, spareMs - (now - youngest)));
  }

  /** Places held now in semaphore `name` (by every process), expired leases not counted. */
  async count(name: string): Promise<number> {
    const key = this.keyOf(name);
    const [seconds, micros] = await this.redis.time();
    return this.redis.zcount(key, `(${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)}`, '+inf');
  }

  /** Stops renewing (leases still held expire within `leaseMs`) and removes the released ones now. */
  close(): void {
    clearInterval(this.renewTimer);
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.flushReleased(true);
  }

  private async renew(): Promise<void> {
    await Promise.all([...this.held].map(([key, tokens]) => this.redis.leaseRenew(key, this.leaseMs, ...tokens).catch(() => undefined)));
  }
}
