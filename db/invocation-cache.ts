import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import stringify from 'safe-stable-stringify';

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

  static field(parameters: Record<string, unknown>): string {
    return createHash('sha256').update(stringify(parameters) ?? '{}').digest('base64url');
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
    const key = this.key(customerId, substrateId);
    // Best effort: a result that cannot be cached is simply computed again next time.
    await this.redis.multi().hset(key, InvocationCache.field(parameters), JSON.stringify(value)).expire(key, this.ttlSeconds).exec().catch(() => undefined);
  }

  async invalidate(customerId: string, substrateId: string): Promise<void> {
    await this.redis.del(this.key(customerId, substrateId));
  }
}
