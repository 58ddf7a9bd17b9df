import type { RedisClient } from '../lib/redis.js';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import type { Tier } from '../db/entities/service-instance.entity.js';
import { tierRateLimitPerMinute, tierReadRateLimitPerMinute } from '../jobs/billing/pricing.js';

/**
 * The per-minute budgets a customer's calls to a service spend, by tier: the API's rate limits
 * (api/rate-limits.ts) and the workers' scheduled runs (workers/schedule-ticks/tick.processor.ts) take
 * points from the same counts in Redis.
 */

const windowSeconds = 60;

export interface TierBudgets {
  writes: RateLimiterRedis;
  reads: RateLimiterRedis;
  /** `RateLimit-Policy` naming both budgets, e.g. `"writes";q=100;w=60, "reads";q=1000;w=60`. */
  policy: string;
}

/** One budget: `points` per fixed one-minute window, counted in Redis (in memory while Redis does not answer). */
export function redisLimiter(
  redis: RedisClient,
  config: Config,
  name: string,
  points: number,
  /**
   * Once a key is refused, refuse it in this process until its window ends, without asking Redis again (its count
   * there is past the budget anyway): a flood past a per-IP budget then costs no Redis round trip a request.
   */
  refuseInMemoryOnceSpent = false,
): RateLimiterRedis {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${config.queuePrefix}:ratelimit:${name}`,
    points,
    duration: windowSeconds,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ points, duration: windowSeconds }),
    ...(refuseInMemoryOnceSpent ? { inMemoryBlockOnConsumed: points + 1 } : {}),
  });
}

/**
 * What a customer's calls to one service are counted under. The customer's hash tag puts the count in the
 * slot of its in-flight places (api/concurrency-limits.ts `placeName`), so one script spends a point and
 * takes a place on a Redis Cluster too.
 */
export const customerLimitKey = (customerId: string, serviceType: string): string => `{${customerId}}:${serviceType}`;

/**
 * Each limited tier's two budgets (an unlimited tier has none; a tier is limited on both or on neither:
 * 0 = unlimited, enterprise, SPEC §5), counting each customer's calls to a service (`customerLimitKey`).
 */
export function createTierBudgets(redis: RedisClient, config: Config): Map<Tier, TierBudgets> {
  const scaled = (perMinute: number) => Math.max(1, Math.round(perMinute * config.rateLimitMultiplier));
  const tierBudgets = new Map<Tier, TierBudgets>();
  for (const tier of Object.keys(tierRateLimitPerMinute) as Tier[]) {
    const writes = tierRateLimitPerMinute[tier];
    const reads = tierReadRateLimitPerMinute[tier];
    if (writes === 0 || reads === 0) continue;
    tierBudgets.set(tier, {
      writes: redisLimiter(redis, config, `tier-${tier}`, scaled(writes)),
      reads: redisLimiter(redis, config, `tier-${tier}-reads`, scaled(reads)),
      policy: `"writes";q=${scaled(writes)};w=${windowSeconds}, "reads";q=${scaled(reads)};w=${windowSeconds}`,
    });
  }
  return tierBudgets;
}

/** The write budget of each limited tier: the API's writes and the workers' scheduled runs take from the same counts. */
export function createTierLimiters(redis: RedisClient, config: Config): Map<Tier, RateLimiterRedis> {
  return new Map([...createTierBudgets(redis, config)].map(([tier, budgets]) => [tier, budgets.writes]));
}
