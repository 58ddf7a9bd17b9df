import type { Request, RequestHandler, Response } from 'express';
import type { RedisClient } from '../lib/redis.js';
import { RateLimiterRes, type RateLimiterRedis } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import { rateLimitedRequests } from '../lib/metrics/catalog.js';
import { WindowCountsAhead } from '../lib/window-counts-ahead.js';
import { createTierBudgets, customerLimitKey, redisLimiter } from '../queue/tier-budgets.js';
import { principalOf } from './auth/authenticate.js';
import { ProblemError } from './problems.js';

/** The two per-minute budgets of a customer's service: reads (GET, HEAD) and writes (everything else). */
type RequestKind = 'reads' | 'writes';

/** The budget a request spends: reads are GET and HEAD (SPEC §9), writes everything else. */
const requestKind = (method: string): RequestKind => (method === 'GET' || method === 'HEAD' ? 'reads' : 'writes');

/** A customer's per-minute budget of one kind, as `RateLimits.budgetOf` finds it. */
export interface CustomerBudget {
  limiter: RateLimiterRedis;
  /** The count's key in `limiter`: `customerLimitKey`. */
  key: string;
  /** The count's key in Redis (rate-limiter-flexible's format), in the customer's hash tag (`customerLimitKey`). */
  redisKey: string;
  /** Points a window allows. */
  points: number;
  windowSeconds: number;
  /** `RateLimit-Policy` naming both budgets of the tier. */
  policy: string;
  describe: (limit: number) => string;
}

export interface RateLimits {
  /**
   * After authentication: per customer and called service, by its tier, with separate budgets for reads and
   * writes; the answer's RateLimit-Limit/Remaining/Reset are those of the budget the request spent.
   */
  customer: RequestHandler;
  /**
   * Spends `points` more of the caller's write budget for one request that counts as several (each job of a
   * bulk submit is one request, SPEC §9); refused (429) when they are not all left, and then none is spent.
   */
  spend(req: Request, res: Response, points: number): Promise<void>;
  /** Gives back points `spend` took, for a request refused after it spent them. */
  refund(req: Request, points: number): Promise<void>;
  /**
   * Takes `points` more of the caller's read budget for a read whose answer is large (`sendReadAnswer`): never
   * refuses the answer it is charged for, which is ready, but a later read is refused while the window is spent.
   */
  chargeReads(req: Request, points: number): Promise<void>;
  /**
   * The budget a request spends (reads or writes of its service, by tier), for a check that counts the point
   * itself (`settle` then answers as `customer` does); null for an unlimited tier.
   */
  budgetOf(req: Request): CustomerBudget | null;
  /** Sets the RateLimit-* headers of a point counted in `budget`; the 429 problem (Retry-After) when past it. */
  settle(budget: CustomerBudget, res: Response, consumed: number, msBeforeNext: number): void;
  /** The customer counts this process spends ahead of Redis (`customerLimits`). */
  ahead: WindowCountsAhead;
  /** Per client IP on POST /auth/register. */
  register: RequestHandler;
  /** Per client IP on POST /auth/login. */
  login: RequestHandler;
  /** Per client IP on POST /auth/refresh and /auth/logout, which need no access token and each write to PostgreSQL. */
  refresh: RequestHandler;
  /**
   * Per client IP: spends a point of its budget of API-key lookups that reach the database (keys this process has no
   * answer cached for), and throws the 429 past it.
   */
  keyLookup(req: Request, res: Response): Promise<void>;
  /** `keyLookup` that answers nothing: false past the budget (for the request log's attribution, after the answer). */
  keyLookupAllowed(req: Request): Promise<boolean>;
}

/**
 * Fixed one-minute windows counted in Redis, so every API process shares one count. If Redis does not
 * answer, each process falls back to counting in memory (rate-limiter-flexible's insurance limiter)
 * rather than refusing every request or letting every request through.
 *
 * The client IP is `req.ip`: the socket address unless TRUST_PROXY names the proxies in front, so a
 * client cannot pick its own address with `X-Forwarded-For`.
 */
export function createRateLimits(redis: RedisClient, config: Config): RateLimits {
  /** A per-client-IP budget: past it, the address is refused in this process without a Redis round trip. */
  const ipLimiter = (name: string, points: number) => redisLimiter(redis, config, name, points, true);
  const tierBudgets = createTierBudgets(redis, config);
  const ahead = new WindowCountsAhead(redis);

  const budgetOf = (req: Request): CustomerBudget | null => {
    const principal = principalOf(req);
    const budgets = tierBudgets.get(principal.tier);
    if (!budgets) return null;
    const kind = requestKind(req.method);
    const counter = budgets[kind];
    const key = customerLimitKey(principal.customerId, principal.serviceType);
    return {
      limiter: counter,
      key,
      redisKey: counter.getKey(key),
      points: counter.points,
      windowSeconds: counter.duration,
      policy: budgets.policy,
      describe: (limit) => `the ${principal.serviceType} service at tier ${principal.tier} allows ${limit} ${kind} per minute`,
    };
  };

  // Not an async function: an unlimited tier (enterprise) passes without a promise.
  const customer: RequestHandler = (req, res, next) => {
    const budget = budgetOf(req);
    if (!budget) return next();
    res.setHeader('RateLimit-Policy', budget.policy);
    return consume(budget.limiter, budget.key, res, 'customer', budget.describe).then(() => next());
  };

  const settle = (budget: CustomerBudget, res: Response, consumed: number, msBeforeNext: number): void => {
    res.setHeader('RateLimit-Policy', budget.policy);
    answer(res, 'customer', budget.points, Math.max(0, budget.points - consumed), msBeforeNext, consumed > budget.points, budget.describe);
  };

  /** The write budget of the caller's tier (none for an unlimited tier) and its key. */
  const writeBudget = (req: Request) => {
    const principal = principalOf(req);
    const budget = tierBudgets.get(principal.tier)?.writes;
    return budget ? { budget, key: customerLimitKey(principal.customerId, principal.serviceType), principal } : null;
  };
  const spend = async (req: Request, res: Response, points: number): Promise<void> => {
    const found = points > 0 ? writeBudget(req) : null;
    if (!found) return;
    const { budget, key, principal } = found;
    try {
      await consume(
        budget,
        key,
        res,
        'customer',
        (limit) =>
          `${points + 1} requests at once (one per job) would pass the limit of the ${principal.serviceType} service at tier ${principal.tier}, ${limit} writes per minute`,
        points,
        true,
      );
    } finally {
      // Spent past what this process knew of the count: its next request counts in Redis first.
      ahead.forget(budget.getKey(key));
    }
  };
  const refund = async (req: Request, points: number): Promise<void> => {
    const found = points > 0 ? writeBudget(req) : null;
    if (!found) return;
    await found.budget.reward(found.key, points).catch(() => undefined);
    ahead.forget(found.budget.getKey(found.key));
  };

  const chargeReads = async (req: Request, points: number): Promise<void> => {
    const principal = points > 0 ? req.principal : undefined;
    const budget = principal ? tierBudgets.get(principal.tier)?.reads : undefined;
    if (!principal || !budget) return;
    const key = customerLimitKey(principal.customerId, principal.serviceType);
    // `penalty` adds the points without refusing; a count Redis does not take now is the next request's to find.
    await budget.penalty(key, points).catch(() => undefined);
    ahead.forget(budget.getKey(key));
  };

  const perIp = (name: 'register' | 'login' | 'refresh', points: number): RequestHandler => {
    const addressLimiter = ipLimiter(`ip-${name}`, points);
    return async (req, res, next) => {
      await consume(
        addressLimiter,
        clientAddress(req),
        res,
        name,
        (limit) => `at most ${limit} ${name} attempts per minute from one address`,
      );
      next();
    };
  };

  const keyLookups = ipLimiter('ip-key-lookup', config.rateLimitKeyLookupsPerMin);
  const describeKeyLookups = (limit: number) => `at most ${limit} lookups of unknown API keys per minute from one address`;
  /** Spends a point of the client's budget of key lookups: the refusal past it, else null. */
  const refusedKeyLookup = (req: Request): Promise<RateLimiterRes | null> =>
    keyLookups.consume(clientAddress(req)).then(
      () => null,
      (rejection: unknown) => {
        if (rejection instanceof RateLimiterRes) return rejection;
        throw rejection;
      },
    );
  /** Only a refusal carries this budget's RateLimit-* headers: an admitted request's headers are its customer's budget. */
  const keyLookup = async (req: Request, res: Response): Promise<void> => {
    const refused = await refusedKeyLookup(req);
    if (refused) answer(res, 'key-lookup', keyLookups.points, 0, refused.msBeforeNext, true, describeKeyLookups);
  };
  const keyLookupAllowed = async (req: Request): Promise<boolean> => (await refusedKeyLookup(req)) === null;

  return {
    customer,
    spend,
    refund,
    chargeReads,
    budgetOf,
    settle,
    ahead,
    register: perIp('register', config.rateLimitRegisterPerMin),
    login: perIp('login', config.rateLimitLoginPerMin),
    refresh: perIp('refresh', config.rateLimitRefreshPerMin),
    keyLookup,
    keyLookupAllowed,
  };
}

/** The client's address: `req.ip` (the socket's, or the one TRUST_PROXY's proxies forwarded). */
export const clientAddress = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/**
 * Takes `points` (default one); sets the RateLimit-* headers either way; a refusal is a 429 problem with
 * Retry-After. With `giveBack`, a refused take returns its points, so a refused bulk costs what a single
 * request does (the one point the middleware took).
 */
async function consume(
  limiter: RateLimiterRedis,
  key: string,
  res: Response,
  name: string,
  describe: (limit: number) => string,
  points = 1,
  giveBack = false,
): Promise<void> {
  let outcome: RateLimiterRes;
  let limited = false;
  try {
    outcome = await limiter.consume(key, points);
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    outcome = rejection;
    limited = true;
    // Give the points back: the refused request costs only the point the middleware took.
    if (giveBack) await limiter.reward(key, points).catch(() => undefined);
  }
  const remaining = limited && giveBack ? Math.max(0, limiter.points - (outcome.consumedPoints - points)) : outcome.remainingPoints;
  answer(res, name, limiter.points, remaining, outcome.msBeforeNext, limited, describe);
}

/** Sets the RateLimit-* headers of a count; when `limited`, throws the 429 problem with them and Retry-After. */
function answer(
  res: Response,
  name: string,
  limit: number,
  remaining: number,
  msBeforeNext: number,
  limited: boolean,
  describe: (limit: number) => string,
): void {
  const resetSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  const headers = {
    'RateLimit-Limit': String(limit),
    'RateLimit-Remaining': String(remaining),
    'RateLimit-Reset': String(resetSeconds),
  };
  for (const [header, value] of Object.entries(headers)) res.setHeader(header, value);
  if (!limited) return;
  rateLimitedRequests.inc({ limiter: name });
  throw new ProblemError('rate-limited', `rate limit exceeded: ${describe(limit)}; retry in ${resetSeconds} s`, {
    headers: { ...headers, 'Retry-After': String(resetSeconds) },
  });
}
