import type { Config } from '../config.js';
import type { Tier } from '../db/entities/service-instance.entity.js';
import { inlinePayloadMaxBytes, inlineResultMaxBytes } from './queues.js';

/**
 * Redis memory one BullMQ job takes with `dataBytes` of payload and result: its hash (name, data, options,
 * timestamps), its place in the wait or delayed set and its events, ~1.1 KiB measured, plus the data rounded
 * up to the allocator's size class (jemalloc's classes above 4 KiB are a quarter of a power of two apart, so
 * at most 25 % more). Measured on Redis 7 with BullMQ 5: 1,153 bytes for a 50-byte payload, 11,205 for 8 KiB.
 */
export function redisBytesPerJob(dataBytes: number): number {
  return Math.ceil(dataBytes * 1.25) + 1536;
}

/** At most how much of Redis one customer of a tier can hold, by part, in bytes. */
export interface CustomerRedisShare {
  /** Queued and delayed jobs: `TIER_MAX_QUEUED` of them, each carrying at most `inlinePayloadMaxBytes` of payload. */
  queued: number;
  /** Running jobs: `TIER_MAX_ACTIVE`, each with its payload and, as it completes, at most `inlineResultMaxBytes` of result. */
  active: number;
  /** The invocation cache: `INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER` as counted, plus 10 % (measured: at most 2 % over it). */
  cache: number;
  total: number;
}

/**
 * The bound of one customer's share of Redis (README "Redis memory"): admission caps its unfinished jobs, a
 * job carries at most 8 KiB of payload and of result (bigger ones live in its row), and its cache has a byte
 * budget. What it does not cover is shared by every customer and bounded per queue, not per customer: finished
 * jobs waiting for their trim (seconds; at most 10,000 per queue, `retention`), failed jobs kept for operators
 * (at most 10,000 per queue) and BullMQ's event streams (about 10,000 events per queue).
 */
export function customerRedisShare(
  config: Pick<Config, 'tierMaxQueued' | 'tierMaxActive' | 'invocationCacheMaxBytesPerCustomer'>,
  tier: Tier,
): CustomerRedisShare {
  const queued = config.tierMaxQueued[tier] * redisBytesPerJob(inlinePayloadMaxBytes);
  const active = config.tierMaxActive[tier] * redisBytesPerJob(inlinePayloadMaxBytes + inlineResultMaxBytes);
  const cache = Math.ceil(config.invocationCacheMaxBytesPerCustomer * 1.1);
  return { queued, active, cache, total: queued + active + cache };
}

/** The bound of each tier, in MiB with one decimal, for a log line or a printed table. */
export function describeCustomerRedisShares(
  config: Pick<Config, 'tierMaxQueued' | 'tierMaxActive' | 'invocationCacheMaxBytesPerCustomer'>,
): Record<Tier, string> {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const describe = (tier: Tier) => {
    const share = customerRedisShare(config, tier);
    return `${mib(share.total)} (queued ${mib(share.queued)}, active ${mib(share.active)}, cache ${mib(share.cache)})`;
  };
  return { starter: describe('starter'), pro: describe('pro'), enterprise: describe('enterprise') };
}
