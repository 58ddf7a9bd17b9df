import { randomBytes } from 'node:crypto';
import type { RedisClient } from './redis.js';

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
 * ARGV[1] lease ms, ARGV[2] limit, ARGV[3] token.
 * Drops expired leases, then takes a place if fewer than `limit` are held.
 * Returns the places held before this call when full as a negative number (-held), else the places held now.
 */
const acquireScript = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then return -held end
redis.call('ZADD', KEYS[1], nowMs + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return held + 1
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

type ScriptedRedis = RedisClient & {
  leaseAcquire(key: string, leaseMs: number, limit: number, token: string): Promise<number>;
  leaseRenew(key: string, leaseMs: number, ...tokens: string[]): Promise<number>;
};

const unheld: Lease = { release: () => undefined };

export class LeaseSemaphores {
  private readonly redis: ScriptedRedis;
  private readonly leaseMs: number;
  /** This process's leases: key → tokens, renewed together. */
  private readonly held = new Map<string, Set<string>>();
  private readonly processTag = randomBytes(6).toString('hex');
  private sequence = 0;
  private readonly renewTimer: NodeJS.Timeout;

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
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
  }

  /**
   * Takes a place in semaphore `name` of at most `limit` holders: a lease, or `{ full: held }` when all are
   * taken. If Redis does not answer, the caller is let through with a lease that holds nothing (a limit
   * must not turn a Redis hiccup into refusals; the requests fail on their own if Redis is really gone).
   */
  async acquire(name: string, limit: number): Promise<Lease | { full: number }> {
    const key = `${this.keyPrefix}:${name}`;
    const token = `${this.processTag}:${++this.sequence}`;
    let outcome: number;
    try {
      outcome = await this.redis.leaseAcquire(key, this.leaseMs, limit, token);
    } catch {
      return unheld;
    }
    if (outcome <= 0) return { full: -outcome };
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
        // Not awaited: a failed ZREM only leaves the lease to expire.
        this.redis.zrem(key, token).catch(() => undefined);
      },
    };
  }

  /** Places held now in semaphore `name` (by every process), expired leases not counted. */
  async count(name: string): Promise<number> {
    const key = `${this.keyPrefix}:${name}`;
    const [seconds, micros] = await this.redis.time();
    return this.redis.zcount(key, `(${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)}`, '+inf');
  }

  /** Stops renewing; leases still held expire within `leaseMs`. */
  close(): void {
    clearInterval(this.renewTimer);
  }

  private async renew(): Promise<void> {
    await Promise.all([...this.held].map(([key, tokens]) => this.redis.leaseRenew(key, this.leaseMs, ...tokens).catch(() => undefined)));
  }
}
