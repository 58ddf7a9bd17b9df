import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import stringify from 'safe-stable-stringify';

/** HSET and EXPIRE as one atomic command: the key never lives without its expiry. */
const setAndExpire = `redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return redis.call('expire', KEYS[1], ARGV[3])`;

/**
 * Invocation results in Redis: one hash per substrate (field = canonical-parameters digest), so
 * deleting or changing a substrate drops all its cached results with one DEL.
 */
export class InvocationCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Seconds a substrate's cached results live after the last write. Default 3600. */
    private readonly ttlSeconds = 3600,
  ) {}

  /** Keyed by owner too: knowing another customer's substrate id never reads their results. */
  private key(customerId: string, substrateId: string): string {
    return `${this.prefix}:cache:invoke:${customerId}:${substrateId}`;
  }

  /** The canonical parameters themselves when short (no hashing on the hot path), else their SHA-256. */
  static field(parameters: Record<string, unknown>): string {
    const canonical = stringify(parameters) ?? '{}';
    return canonical.length <= 96 ? canonical : `#${createHash('sha256').update(canonical).digest('base64url')}`;
  }

  /** Told of every lookup (the workers count hits and misses for Prometheus). Default: nobody. */
  onLookup?: (hit: boolean) => void;

  /** A lookup that Redis cannot answer (an outage) is a miss: the cache never fails a job. */
  async get(customerId: string, substrateId: string, parameters: Record<string, unknown>): Promise<{ value: unknown } | null> {
    const hit = await this.redis.hget(this.key(customerId, substrateId), InvocationCache.field(parameters)).catch(() => null);
    this.onLookup?.(hit !== null);
    return hit === null ? null : { value: JSON.parse(hit) };
  }

  async set(customerId: string, substrateId: string, parameters: Record<string, unknown>, value: unknown): Promise<void> {
    // Best effort: a result that cannot be cached is simply computed again next time.
    await this.redis
      .eval(setAndExpire, 1, this.key(customerId, substrateId), InvocationCache.field(parameters), JSON.stringify(value), this.ttlSeconds)
      .catch(() => undefined);
  }

  async invalidate(customerId: string, substrateId: string): Promise<void> {
    await this.redis.del(this.key(customerId, substrateId));
  }
}
