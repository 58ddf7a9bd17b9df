import { createHash } from 'node:crypto';
import type { RedisClient } from '../lib/redis.js';
import stringify from 'safe-stable-stringify';
import { GroupCommit } from './group-commit.js';

/**
 * HSET of every field-value pair given, then EXPIRE, as one atomic command (the key never lives without
 * its expiry); when the hash would pass ARGV[2] fields, random fields make room first (random
 * replacement: a one-off invocation does not keep a popular one out for long). KEYS[1] the hash;
 * ARGV[1] TTL seconds, ARGV[2] most fields, then field, value pairs.
 */
const setAndExpire = `local over = redis.call('hlen', KEYS[1]) + (#ARGV - 2) / 2 - tonumber(ARGV[2])
if over > 0 then
  local victims = redis.call('hrandfield', KEYS[1], over)
  if #victims > 0 then redis.call('hdel', KEYS[1], unpack(victims)) end
end
redis.call('hset', KEYS[1], unpack(ARGV, 3))
return redis.call('expire', KEYS[1], ARGV[1])`;

interface Lookup {
  key: string;
  field: string;
}
interface Store extends Lookup {
  value: string;
}

/** Items grouped by their hash key, in order. */
function byKey<Item extends Lookup>(items: Item[]): Map<string, Item[]> {
  const groups = new Map<string, Item[]>();
  for (const item of items) {
    const group = groups.get(item.key);
    if (group) group.push(item);
    else groups.set(item.key, [item]);
  }
  return groups;
}

/**
 * Invocation results in Redis: one hash per substrate (field = canonical parameters), so deleting or
 * changing a substrate drops all its cached results with one DEL.
 *
 * Lookups and stores are batched like database writes (a GroupCommit each): those made while Redis is
 * answering the previous batch go out together, one HMGET (or one HSET + EXPIRE) per substrate. A busy
 * worker then sends a command per many jobs instead of one per job; a quiet one waits for nothing.
 */
export class InvocationCache {
  private readonly lookups: GroupCommit<Lookup, string | null>;
  private readonly stores: GroupCommit<Store>;
  private readonly ttlSeconds: number;
  private readonly maxEntriesPerSubstrate: number;
  private readonly maxValueBytes: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: {
      /** Seconds a substrate's cached results live after the last write. Default 3600. */
      ttlSeconds?: number;
      /** Least time between two lookup batches under load, in ms (see GroupCommit). Default 0. */
      lookupLingerMs?: number;
      /**
       * Parameter sets cached per substrate (one batched store may overshoot it); past it, each new result
       * replaces a random older one. Redis runs without eviction (BullMQ needs that), so the cache must
       * bound itself. Default 10,000.
       */
      maxEntriesPerSubstrate?: number;
      /**
       * Largest result kept, in bytes of JSON (INVOCATION_CACHE_MAX_BYTES); a bigger one is not cached (it is
       * computed again next time), so a few huge results cannot fill Redis. Default 16 KiB.
       */
      maxValueBytes?: number;
    } = {},
  ) {
    this.ttlSeconds = options.ttlSeconds ?? 3600;
    this.maxEntriesPerSubstrate = options.maxEntriesPerSubstrate ?? 10_000;
    this.maxValueBytes = options.maxValueBytes ?? 16 * 1024;
    this.lookups = new GroupCommit((items) => this.readBatch(items), { lingerMs: options.lookupLingerMs ?? 0 });
    this.stores = new GroupCommit((items) => this.writeBatch(items));
  }

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
    const hit = await this.lookups
      .add({ key: this.key(customerId, substrateId), field: InvocationCache.field(parameters) })
      .catch(() => null);
    this.onLookup?.(hit !== null);
    return hit === null ? null : { value: JSON.parse(hit) };
  }

  /** Counts results too big to cache (the workers export it to Prometheus). Default: nobody. */
  onSkip?: () => void;

  /**
   * Best effort: a result that cannot be cached is simply computed again next time. Returns whether it was
   * offered to Redis: false for a result over `maxValueBytes`.
   */
  async set(customerId: string, substrateId: string, parameters: Record<string, unknown>, value: unknown): Promise<boolean> {
    const json = JSON.stringify(value) ?? 'null';
    // Length in UTF-16 units ≤ UTF-8 bytes ≤ 3 × it: encode only when the cheap bounds cannot decide.
    if (json.length > this.maxValueBytes || (json.length * 3 > this.maxValueBytes && Buffer.byteLength(json) > this.maxValueBytes)) {
      this.onSkip?.();
      return false;
    }
    await this.stores
      .add({ key: this.key(customerId, substrateId), field: InvocationCache.field(parameters), value: json })
      .catch(() => undefined);
    return true;
  }

  async invalidate(customerId: string, substrateId: string): Promise<void> {
    await this.redis.del(this.key(customerId, substrateId));
  }

  private async readBatch(items: Lookup[]): Promise<Array<string | null>> {
    const found = new Map<Lookup, string | null>();
    await Promise.all(
      [...byKey(items)].map(async ([key, group]) => {
        const values = await this.redis.hmget(key, ...group.map((item) => item.field));
        group.forEach((item, index) => found.set(item, values[index] ?? null));
      }),
    );
    return items.map((item) => found.get(item) ?? null);
  }

  private async writeBatch(items: Store[]): Promise<void> {
    await Promise.all(
      [...byKey(items)].map(([key, group]) =>
        this.redis.eval(
          setAndExpire,
          1,
          key,
          this.ttlSeconds,
          this.maxEntriesPerSubstrate,
          ...group.flatMap((item) => [item.field, item.value]),
        ),
      ),
    );
  }
}
