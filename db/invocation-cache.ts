import { createHash } from 'node:crypto';
import type { RedisClient } from '../lib/redis.js';
import stringify from 'safe-stable-stringify';
import { GroupCommit } from './group-commit.js';

/*
 * One hash per customer holds all its cached results. Fields:
 *   `<substrateId>:<epoch>|<canonical parameters>`  an entry (substrate ids are `0x…`), value its result's JSON;
 *   `e:<substrateId>`  the substrate's epoch (absent = 0), bumped to invalidate all its entries at once;
 *   `#bytes`  the running size of the entries and epoch fields (see ENTRY_OVERHEAD).
 * Reserved fields start with `#` or `e:`, which no entry field does, and are never evicted.
 */

/**
 * Bytes counted per field on top of its name and value: about what Redis spends per hash entry besides them
 * (the dict entry, the two strings' headers, a bucket pointer, allocator rounding), so `#bytes` tracks the
 * hash's real memory rather than only its payload.
 */
const ENTRY_OVERHEAD = 64;

/** Lua: the field's name is reserved (the size or an epoch), not an entry. */
const isReservedLua = `local function reserved(f)
  local c = string.byte(f, 1)
  return c == 35 or (c == 101 and string.byte(f, 2) == 58)
end`;

/**
 * The values of the entries asked for under their substrates' current epochs (nil for a miss), in order.
 * KEYS[1] the customer's hash; ARGV substrate id, canonical parameters pairs.
 */
const lookupLua = `local epochs, fields = {}, {}
for i = 1, #ARGV, 2 do
  local s = ARGV[i]
  local e = epochs[s]
  if not e then
    e = redis.call('hget', KEYS[1], 'e:' .. s) or '0'
    epochs[s] = e
  end
  fields[#fields + 1] = s .. ':' .. e .. '|' .. ARGV[i + 1]
end
return redis.call('hmget', KEYS[1], unpack(fields))`;

/**
 * Stores each entry under its substrate's current epoch, in order, keeping `#bytes` ≤ ARGV[2]: an entry
 * replacing one of the same field frees that first; then random entries (never reserved fields) are evicted
 * until the new one fits (random replacement: a one-off invocation does not keep a popular one out for
 * long). An entry that cannot fit even so (bigger than the budget) is not stored. Then EXPIRE, in the same
 * script, so the key never lives without its expiry.
 * KEYS[1] the customer's hash; ARGV[1] TTL seconds, ARGV[2] byte budget, then substrate id, canonical
 * parameters, value triples. Returns how many entries were stored.
 */
const storeLua = `${isReservedLua}
local key, budget, overhead = KEYS[1], tonumber(ARGV[2]), ${ENTRY_OVERHEAD}
local bytes = tonumber(redis.call('hget', key, '#bytes') or '0')
local epochs, stored = {}, 0
local function fits(need)
  local want = 1
  while bytes + need > budget do
    local victims = redis.call('hrandfield', key, want)
    local freed = false
    for _, f in ipairs(victims) do
      if not reserved(f) then
        bytes = bytes - (#f + redis.call('hstrlen', key, f) + overhead)
        redis.call('hdel', key, f)
        freed = true
        if bytes + need <= budget then return true end
      end
    end
    if not freed then
      -- Only reserved fields were drawn: draw more; once all fields were drawn, nothing is left to evict.
      if #victims < want then return false end
      want = want * 2
    end
  end
  return true
end
for i = 3, #ARGV, 3 do
  local s, value = ARGV[i], ARGV[i + 2]
  local e = epochs[s]
  if not e then
    e = redis.call('hget', key, 'e:' .. s) or '0'
    epochs[s] = e
  end
  local f = s .. ':' .. e .. '|' .. ARGV[i + 1]
  local old = redis.call('hstrlen', key, f)
  if old > 0 then
    bytes = bytes - (#f + old + overhead)
    redis.call('hdel', key, f)
  end
  local need = #f + #value + overhead
  if need <= budget and fits(need) then
    redis.call('hset', key, f, value)
    bytes = bytes + need
    stored = stored + 1
  end
end
redis.call('hset', key, '#bytes', bytes)
redis.call('expire', key, ARGV[1])
return stored`;

/**
 * Bumps the substrate's epoch, so its entries are no longer found (they stay, counted, until evicted or
 * expired). A new epoch field is counted into `#bytes` (its value as 20 digits, the most it can grow to). A
 * missing hash holds nothing to invalidate and is not created (HINCRBY would create it without an expiry).
 * KEYS[1] the customer's hash; ARGV[1] substrate id.
 */
const invalidateLua = `if redis.call('exists', KEYS[1]) == 0 then return 0 end
local f = 'e:' .. ARGV[1]
if redis.call('hincrby', KEYS[1], f, 1) == 1 then
  redis.call('hincrby', KEYS[1], '#bytes', #f + 20 + ${ENTRY_OVERHEAD})
end
return 1`;

interface Lookup {
  key: string;
  substrateId: string;
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
 * Invocation results in Redis: one hash per customer (see the field layout above). A customer's cache holds
 * at most about `maxBytesPerCustomer` of Redis memory, however many substrates it has: each store counts
 * its entry (name + value + an estimate of Redis's per-entry overhead) into the hash's running size and
 * evicts random entries to stay within the budget; the hash expires `ttlSeconds` after its last store.
 * Redis runs `noeviction` (BullMQ needs that), so a tenant filling it would stop every tenant: the cache
 * bounds itself. Changing or deleting a substrate bumps its epoch (one HINCRBY), so its results are no
 * longer found; they stay, counted in the budget, until random eviction or the expiry removes them.
 *
 * Lookups and stores are batched like database writes (a GroupCommit each): those made while Redis is
 * answering the previous batch go out together, one script call per customer. A busy worker then sends a
 * command per many jobs instead of one per job; a quiet one waits for nothing. Plain EVAL, not EVALSHA or a
 * defined command: see workers/trim-completed.ts.
 */
export class InvocationCache {
  private readonly lookups: GroupCommit<Lookup, string | null>;
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

  /** A lookup that Redis cannot answer (an outage) is a miss: the cache never fails a job. */
  async get(customerId: string, substrateId: string, parameters: Record<string, unknown>): Promise<{ value: unknown } | null> {
    const hit = await this.lookups
      .add({ key: this.key(customerId), substrateId, field: InvocationCache.field(parameters) })
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
      .add({ key: this.key(customerId), substrateId, field: InvocationCache.field(parameters), value: json })
      .catch(() => undefined);
    return true;
  }

  /** The substrate's cached results are no longer found (O(1): its epoch is bumped). */
  async invalidate(customerId: string, substrateId: string): Promise<void> {
    await this.redis.eval(invalidateLua, 1, this.key(customerId), substrateId);
  }

  private async readBatch(items: Lookup[]): Promise<Array<string | null>> {
    const found = new Map<Lookup, string | null>();
    await Promise.all(
      [...byKey(items)].map(async ([key, group]) => {
        const values = (await this.redis.eval(lookupLua, 1, key, ...group.flatMap((item) => [item.substrateId, item.field]))) as Array<
          string | null
        >;
        group.forEach((item, index) => found.set(item, values[index] ?? null));
      }),
    );
    return items.map((item) => found.get(item) ?? null);
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
          ...group.flatMap((item) => [item.substrateId, item.field, item.value]),
        ),
      ),
    );
  }
}
