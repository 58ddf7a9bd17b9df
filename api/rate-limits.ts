import { tierRateLimitPerMinute } from '../jobs/billing/pricing.js';
import type { Request, RequestHandler, Response } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import type { Tier } from '../db/entities/service-instance.entity.js';
import { rateLimitedRequests } from '../ops/metrics/catalog.js';
import { principalOf } from './auth/authenticate.js';
import { ProblemError } from './problems.js';

/** Requests per minute per customer and service type, by the tier of that service (SPEC §5). Null: unlimited. */
export const tierRequestsPerMinute: Readonly<Record<Tier, number | null>> = Object.fromEntries(
  Object.entries(tierRateLimitPerMinute).map(([tier, perMinute]) => [tier, perMinute === 0 ? null : perMinute]),
) as Record<Tier, number | null>;

const windowSeconds = 60;

export interface RateLimits {
  /** After authentication: per customer and called service, by its tier. */
  customer: RequestHandler;
  /** Per client IP on POST /auth/register. */
  register: RequestHandler;
  /** Per client IP on POST /auth/login. */
  login: RequestHandler;
}

/**
 * Fixed one-minute windows counted in Redis, so every API process shares one count. If Redis does not
 * answer, each process falls back to counting in memory (rate-limiter-flexible's insurance limiter)
 * rather than refusing every request or letting every request through.
 *
 * The client IP is `req.ip`: the socket address unless TRUST_PROXY names the proxies in front, so a
 * client cannot pick its own address with `X-Forwarded-For`.
 */
export function createRateLimits(redis: Redis, config: Config): RateLimits {
  const limiter = (name: string, points: number) => redisLimiter(redis, config, name, points);
  const tierLimiters = createTierLimiters(redis, config);

  // Not an async function: an unlimited tier (enterprise) passes without a promise.
  const customer: RequestHandler = (req, res, next) => {
    const principal = principalOf(req);
    const tierLimiter = tierLimiters.get(principal.tier);
    if (!tierLimiter) return next();
    return consume(tierLimiter, customerLimitKey(principal.customerId, principal.serviceType), res, 'customer', (limit) =>
      `the ${principal.serviceType} service at tier ${principal.tier} allows ${limit} requests per minute`,
    ).then(() => next());
  };

  const perIp = (name: 'register' | 'login', points: number): RequestHandler => {
    const ipLimiter = limiter(`ip-${name}`, points);
    return async (req, res, next) => {
      await consume(ipLimiter, clientIp(req), res, name, (limit) => `at most ${limit} ${name} attempts per minute from one address`);
      next();
    };
  };

  return {
    customer,
    register: perIp('register', config.rateLimitRegisterPerMin),
    login: perIp('login', config.rateLimitLoginPerMin),
  };
}

function redisLimiter(redis: Redis, config: Config, name: string, points: number): RateLimiterRedis {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${config.queuePrefix}:ratelimit:${name}`,
    points,
    duration: windowSeconds,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ points, duration: windowSeconds }),
  });
}

/** What a customer's calls to one service are counted under. */
export const customerLimitKey = (customerId: string, serviceType: string): string => `${customerId}:${serviceType}`;

/**
 * One limiter per limited tier (an unlimited tier has none), counting each customer's calls to a service
 * (`customerLimitKey`): the API's per-customer check and the workers' scheduled runs take from the same counts.
 */
export function createTierLimiters(redis: Redis, config: Config): Map<Tier, RateLimiterRedis> {
  const tierLimiters = new Map<Tier, RateLimiterRedis>();
  for (const [tier, perMinute] of Object.entries(tierRequestsPerMinute) as Array<[Tier, number | null]>) {
    if (perMinute !== null) tierLimiters.set(tier, redisLimiter(redis, config, `tier-${tier}`, Math.max(1, Math.round(perMinute * config.rateLimitMultiplier))));
  }
  return tierLimiters;
}

const clientIp = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/** Takes one point; sets the RateLimit-* headers either way; a refusal is a 429 problem with Retry-After. */
async function consume(limiter: RateLimiterRedis, key: string, res: Response, name: string, describe: (limit: number) => string): Promise<void> {
  let outcome: RateLimiterRes;
  let limited = false;
  try {
    outcome = await limiter.consume(key);
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    outcome = rejection;
    limited = true;
  }
  const resetSeconds = Math.max(1, Math.ceil(outcome.msBeforeNext / 1000));
  const headers = {
    'RateLimit-Limit': String(limiter.points),
    'RateLimit-Remaining': String(outcome.remainingPoints),
    'RateLimit-Reset': String(resetSeconds),
  };
  for (const [header, value] of Object.entries(headers)) res.setHeader(header, value);
  if (!limited) return;
  rateLimitedRequests.inc({ limiter: name });
  throw new ProblemError('rate-limited', `rate limit exceeded: ${describe(limiter.points)}; retry in ${resetSeconds} s`, {
    headers: { ...headers, 'Retry-After': String(resetSeconds) },
  });
}
