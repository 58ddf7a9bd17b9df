import { createHash } from 'node:crypto';
import type { RedisClient } from '../lib/redis.js';
import stringify from 'safe-stable-stringify';
import { GroupCommit } from './group-commit.js';
import { lookupLua, moveEpochLua, reviveLua, storeLua } from './invocation-cache-scripts.js';

/**
 * Where a substrate's cached results stand, as a lookup read it: a result computed afterwards is stored under
 * it, and dropped if the substrate has been changed or deleted since (see invocation-cache-scripts.ts).
 */
export type CacheEpoch = string;

/** A lookup's answer: the cached result, or the epoch to store a result computed now under (null: unknown). */
export type CacheLookup = { value: unknown } | { epoch: CacheEpoch | null };

/** The epoch of a substrate whose results were never dropped (not changed, deleted or created again). */
export const firstEpoch: CacheEpoch = '0';

/**
 * A miss under the substrate's first epoch: what a submitter's `cacheMissed` hint vouches for, so the job's worker
 * neither looks up again nor reads the epoch, and stores under `firstEpoch` (dropped if the epoch moved since).
 */
export const missedAtFirstEpoch = (found: CacheLookup): boolean => 'epoch' in found && found.epoch === firstEpoch;

interface Lookup {
  key: string;
  substrateId: string;
  /** The canonical parameters, or '' for the epoch alone. */
  field: string;
}
interface Found {
  value: string | null;
  epoch: CacheEpoch;
}
interface Store extends Lookup {
  value: string;
  epoch: CacheEpoch;
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
 * Invocation results in Redis: one hash per customer (its fields: invocation-cache-scripts.ts). A customer's
 * cache holds at most about `maxBytesPerCustomer` of Redis memory, however many substrates it has: each store
 * counts its entry (name + value + an estimate of Redis's per-entry overhead) into the hash's running size and
 * evicts random entries to stay within the budget; the hash expires `ttlSeconds` after its last store.
 * Redis runs `noeviction` (BullMQ needs that), so a tenant filling it would stop every tenant: the cache
 * bounds itself. Changing, deleting or creating again a substrate moves its epoch on (one script call), so its
 * results are no longer found; they stay, counted in the budget, until random eviction or the expiry removes
 * them. A result is stored under the epoch read before its evaluation began, or not at all.
 *
 * Lookups and stores are batched like database writes (a GroupCommit each): those made while Redis is
 * answering the previous batch go out together, one script call per customer. A busy worker then sends a
 * command per many jobs instead of one per job; a quiet one waits for nothing. Plain EVAL, not EVALSHA or a
 * defined command: see workers/trim-completed.ts.
 */
export class InvocationCache {
  private readonly lookups: GroupCommit<Lookup, Found>;
  private readonly stores: GroupCommit<Store>;
  private readonly ttlSeconds: number;
  private readonly maxBytesPerCustomer: number;
  private readonly maxValueBytes: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: {
      /** Seconds a customer's cached results live after its last store. Default 3600. */
      ttlSeconds?: number;
      /** Least time between two lookup batches under load, in ms (see GroupCommit). Default 0. */
      lookupLingerMs?: number;
      /**
       * Redis memory one customer's cached results may take, in bytes (INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER),
       * counting each entry's name, value and Redis's per-entry overhead; past it, each new result replaces
       * random older ones. Default 8 MiB.
       */
      maxBytesPerCustomer?: number;
      /**
       * Largest result kept, in bytes of JSON (INVOCATION_CACHE_MAX_BYTES); a bigger one is not cached (it is
       * computed again next time), so a few huge results do not take a customer's whole budget. Default 16 KiB.
       */
      maxValueBytes?: number;
    } = {},
  ) {
    this.ttlSeconds = options.ttlSeconds ?? 3600;
    this.maxBytesPerCustomer = options.maxBytesPerCustomer ?? 8 * 1024 * 1024;
    this.maxValueBytes = options.maxValueBytes ?? 16 * 1024;
    this.lookups = new GroupCommit((items) => this.readBatch(items), { lingerMs: options.lookupLingerMs ?? 0 });
    this.stores = new GroupCommit((items) => this.writeBatch(items));
  }

  /** Keyed by owner: knowing another customer's substrate id never reads their results. */
  private key(customerId: string): string {
    return `${this.prefix}:cache:invoke:${customerId}`;
  }

  /** The canonical parameters themselves when short (no hashing on the hot path), else their SHA-256. */
  static field(parameters: Record<string, unknown>): string {
    const canonical = stringify(parameters) ?? '{}';
    return canonical.length <= 96 ? canonical : `#${createHash('sha256').update(canonical).digest('base64url')}`;
  }

  /** Told of every lookup (the workers count hits and misses for Prometheus). Default: nobody. */
  onLookup?: (hit: boolean) => void;

  /**
   * The cached result, or the epoch to `set` one computed now under. Look up before reading the substrate's
   * definition. A lookup that Redis cannot answer (an outage) is a miss with no epoch: the cache never fails a job.
   */
  async lookup(customerId: string, substrateId: string, parameters: Record<string, unknown>): Promise<CacheLookup> {
    const found = await this.lookups
      .add({ key: this.key(customerId), substrateId, field: InvocationCache.field(parameters) })
      .catch(() => null);
    const hit = found?.value ?? null;
    this.onLookup?.(hit !== null);
    return hit === null ? { epoch: found?.epoch ?? null } : { value: JSON.parse(hit) };
  }

  /** The cached result, or null (a miss, or Redis cannot answer). For callers that store nothing. */
  async get(customerId: string, substrateId: string, parameters: Record<string, unknown>): Promise<{ value: unknown } | null> {
    const found = await this.lookup(customerId, substrateId, parameters);
    return 'value' in found ? found : null;
  }

  /** Counts results too big to cache (the workers export it to Prometheus). Default: nobody. */
  onSkip?: () => void;

  /**
   * Best effort: a result that cannot be cached is simply computed again next time. Stored under `epoch`, the one
   * read (`lookup`, `epochOf`) before the evaluation began, and dropped if that is no longer the substrate's
   * (changed, deleted, created again) or unknown (null). Returns whether it was offered to Redis: false for an
   * unknown epoch or a result over `maxValueBytes`.
   */
  async set(
    customerId: string,
    substrateId: string,
    parameters: Record<string, unknown>,
    value: unknown,
    epoch: CacheEpoch | null,
  ): Promise<boolean> {
    if (epoch === null) return false;
    let json: string;
    try {
      json = JSON.stringify(value) ?? 'null';
    } catch {
      // Too deep or too long to encode (evaluation threads refuse such results; this keeps the cache from ever failing a job).
      this.onSkip?.();
      return false;
    }
    // Length in UTF-16 units ≤ UTF-8 bytes ≤ 3 × it: encode only when the cheap bounds cannot decide.
    if (json.length > this.maxValueBytes || (json.length * 3 > this.maxValueBytes && Buffer.byteLength(json) > this.maxValueBytes)) {
      this.onSkip?.();
      return false;
    }
    await this.stores
      .add({ key: this.key(customerId), substrateId, field: InvocationCache.field(parameters), value: json, epoch })
      .catch(() => undefined);
    return true;
  }

  /** After the substrate changed: its cached results are no longer found (O(1): its epoch moves on). */
  async invalidate(customerId: string, substrateId: string): Promise<void> {
    await this.redis.eval(moveEpochLua, 1, this.key(customerId), substrateId, 'changed', this.ttlSeconds);
  }

  /** After the substrate was deleted: its results are no longer found, and none is stored until it is created again. */
  async markDeleted(customerId: string, substrateId: string): Promise<void> {
    await this.redis.eval(moveEpochLua, 1, this.key(customerId), substrateId, 'deleted', this.ttlSeconds);
  }

  /** After the substrates were created (not those that already existed): cached again, none of a predecessor's results found. */
  async markCreated(customerId: string, substrateIds: readonly string[]): Promise<void> {
    if (substrateIds.length === 0) return;
    await this.redis.eval(reviveLua, 1, this.key(customerId), ...substrateIds);
  }

  private async readBatch(items: Lookup[]): Promise<Found[]> {
    const found = new Map<Lookup, Found>();
    await Promise.all(
      [...byKey(items)].map(async ([key, group]) => {
        const [values, epochs] = (await this.redis.eval(lookupLua, 1, key, ...group.flatMap((item) => [item.substrateId, item.field]))) as [
          Array<string | null>,
          CacheEpoch[],
        ];
        group.forEach((item, index) => found.set(item, { value: values[index] ?? null, epoch: epochs[index] as CacheEpoch }));
      }),
    );
    return items.map((item) => found.get(item) as Found);
  }

  private async writeBatch(items: Store[]): Promise<void> {
    await Promise.all(
      [...byKey(items)].map(([key, group]) =>
        this.redis.eval(
          storeLua,
          1,
          key,
          this.ttlSeconds,
          this.maxBytesPerCustomer,
          ...group.flatMap((item) => [item.substrateId, item.field, item.value, item.epoch]),
        ),
      ),
    );
  }
}
