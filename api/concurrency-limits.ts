import type { Request, RequestHandler, Response } from 'express';
import type { Config } from '../config.js';
import type { Lease, LeaseSemaphores } from '../lib/lease-semaphore.js';
import { rateLimitedRequests } from '../lib/metrics/catalog.js';
import type { Principal } from './auth/principal.js';
import { principalOf } from './auth/authenticate.js';
import { ProblemError } from './problems.js';
import { whenClosed } from './request-lifecycle.js';
import type { RateLimits } from './rate-limits.js';

/** What a refused request is told to wait: in-flight requests end within moments. */
const retryAfterSeconds = 1;

/** The job event stream route, whose requests hold a stream place instead of an in-flight one (from the app's root). */
const eventStreamPath = /^\/api\/v1\/jobs\/[^/]+\/events$/;

/**
 * The routes that write up to 16 MiB in one request: each holds a database connection for its INSERT, which
 * can take seconds. Counted apart (TIER_MAX_BULK_IN_FLIGHT) and well below the API's pool of 10: with only
 * the in-flight cap (starter 10), one customer's ten slow bulks held every connection and stalled every tenant.
 */
export const bulkWrites = new Set(['/api/v1/jobs/bulk', '/api/v1/substrates/batch', '/api/v1/batches']);

/**
 * The request's path from the app's root, wherever the limit is mounted (the body stage limits bulk writes
 * before their body is read, the metered routes everything else under /api/v1).
 */
const pathOf = (req: Request): string => req.baseUrl + req.path;

/** Whether `req` asks for a job's event stream (`GET /jobs/:id/events`), wherever the caller is mounted. */
export const isEventStream = (req: Request): boolean => eventStreamPath.test(pathOf(req));

type Kind = 'in-flight' | 'streams' | 'bulk-writes';

/**
 * The semaphore of a customer's places of one kind. The customer's hash tag is that of its rate counts
 * (queue/tier-budgets.ts `customerLimitKey`): one script takes a place and spends a point, on a Redis
 * Cluster too.
 */
export const placeName = (kind: Kind, customerId: string): string => `${kind}:{${customerId}}`;

const refusedWhat: Record<Kind, string> = {
  'in-flight': 'requests in flight',
  streams: 'open event streams',
  'bulk-writes': 'bulk writes in flight (POST /jobs/bulk, /substrates/batch, /batches)',
};

/**
 * Takes a place in the customer's `kind` semaphore for as long as `res` is open (released on `close`, which
 * fires when the answer is sent and when the client goes away); 429 with Retry-After when all are taken.
 */
async function holdPlace(leases: LeaseSemaphores, kind: Kind, limit: number, principal: Principal, res: Response): Promise<void> {
  keepUntilAnswered(await leases.acquire(placeName(kind, principal.customerId), limit), kind, limit, principal, res);
}

/** Throws the 429 of a full semaphore; else holds the lease until `res` closes. */
function keepUntilAnswered(lease: Lease | { full: number }, kind: Kind, limit: number, principal: Principal, res: Response): void {
  if ('full' in lease) {
    rateLimitedRequests.inc({ limiter: kind });
    throw new ProblemError(
      'rate-limited',
      `too many ${refusedWhat[kind]}: tier ${principal.tier} allows ${limit} at once for a customer; retry in ${retryAfterSeconds} s`,
      { headers: { 'Retry-After': String(retryAfterSeconds) }, limit, in_use: lease.full },
    );
  }
  if (res.closed) lease.release();
  else whenClosed(res, () => lease.release());
}

/**
 * After authentication: a customer's requests in flight at once, across every API process, are at most its
 * tier's TIER_MAX_IN_FLIGHT (enterprise too: 3,000 concurrent requests from one customer had held another
 * tenant's for 5.5 s), and its bulk writes at most TIER_MAX_BULK_IN_FLIGHT. Event streams are counted apart
 * (`takeStreamPlace`), as they stay open for minutes.
 */
export function inFlightLimit(leases: LeaseSemaphores, config: Pick<Config, 'tierMaxInFlight' | 'tierMaxBulkInFlight'>): RequestHandler {
  return (req, res, next) => {
    const path = pathOf(req); // a getter that parses the URL: read it once
    if (req.method === 'GET' && eventStreamPath.test(path)) return next();
    const principal = principalOf(req);
    const limit = config.tierMaxInFlight[principal.tier];
    const name = placeName('in-flight', principal.customerId);
    const bulk = req.method === 'POST' && bulkWrites.has(path);
    // Decided in this process (a spare place, or every place held here): no promise, no Redis command.
    const here = leases.takeHere(name, limit);
    if (here && !bulk) {
      keepUntilAnswered(here, 'in-flight', limit, principal, res);
      return next();
    }
    return (async () => {
      keepUntilAnswered(here ?? (await leases.acquire(name, limit)), 'in-flight', limit, principal, res);
      if (bulk) await holdPlace(leases, 'bulk-writes', config.tierMaxBulkInFlight[principal.tier], principal, res);
      next();
    })();
  };
}

/**
 * The in-flight limit and the rate limit of a customer's request in one Redis command (one Lua script:
 * `LeaseSemaphores.acquireCounting`) where there used to be two side by side, plus a give-back when the
 * in-flight cap refused. The script spends the request's point first, then takes an in-flight place unless
 * the budget is passed:
 * - past the budget: 429 from the rate limit (RateLimit-*, Retry-After until the window ends), no place taken;
 * - all places taken: 429 from the in-flight cap (Retry-After 1, RateLimit-* of the point it spent);
 * - else the request goes on, holding its place until the answer closes.
 * A request the in-flight cap refuses spends its point (it used to be given back): a client at its cap
 * that keeps sending is soon refused by the rate limit, rather than costing a Redis script per request
 * forever. An unlimited tier (enterprise) only takes a place; an event stream only spends a point (its
 * route takes a stream place). If Redis does not answer, the rate limit counts in memory
 * (rate-limiter-flexible's insurance limiter) and no place is held, as each limit did on its own.
 * A customer's steady requests need no script at all: a spare place this process just gave back
 * (`takeHere`) and a point spent ahead of Redis while the count as Redis last told it leaves room
 * (lib/window-counts-ahead.ts) — the point follows to Redis a moment later, off the request's path.
 */
export function customerLimits(
  leases: LeaseSemaphores,
  rateLimits: RateLimits,
  config: Pick<Config, 'tierMaxInFlight' | 'tierMaxBulkInFlight'>,
): RequestHandler {
  const inFlight = inFlightLimit(leases, config);
  return (req, res, next) => {
    const path = pathOf(req); // a getter that parses the URL: read it once
    if (req.method === 'GET' && eventStreamPath.test(path)) return rateLimits.customer(req, res, next);
    const budget = rateLimits.budgetOf(req);
    if (!budget) return inFlight(req, res, next);
    const principal = principalOf(req);
    const limit = config.tierMaxInFlight[principal.tier];
    const name = placeName('in-flight', principal.customerId);
    const counter = { key: budget.redisKey, points: 1, windowSeconds: budget.windowSeconds, budget: budget.points };
    const bulk = req.method === 'POST' && bulkWrites.has(path);
    // A spare place of this process, and room in the count as Redis last told it: on without a round trip.
    const here = bulk ? undefined : leases.takeHere(name, limit);
    if (here && !('full' in here)) {
      const spent = rateLimits.ahead.spendHere(counter);
      if (spent) {
        rateLimits.settle(budget, res, spent.consumed, spent.msBeforeNext);
        keepUntilAnswered(here, 'in-flight', limit, principal, res);
        return next();
      }
      here.release();
    }
    // This request's point goes with any this process spent ahead and has not yet sent: Redis's answer counts them all.
    const counting = (ahead: number) => leases.acquireCounting(name, limit, ahead > 0 ? { ...counter, points: 1 + ahead } : counter);
    const taken = rateLimits.ahead.takeAhead(counter.key);
    return (typeof taken === 'number' ? counting(taken) : taken.then(counting)).then((counted) => {
      // Redis did not answer: each limit as it does on its own (counted in memory, no place held).
      if (!counted) return passRateLimit(rateLimits, req, res).then(() => next());
      rateLimits.ahead.heard(counter.key, counted.consumed, counted.msBeforeNext);
      rateLimits.settle(budget, res, counted.consumed, counted.msBeforeNext);
      if (counted.place) keepUntilAnswered(counted.place, 'in-flight', limit, principal, res);
      if (bulk) {
        return holdPlace(leases, 'bulk-writes', config.tierMaxBulkInFlight[principal.tier], principal, res).then(() => next());
      }
      next();
    });
  };
}

/** `rateLimits.customer` as a promise: resolved when it passes, rejected with its 429. */
function passRateLimit(rateLimits: RateLimits, req: Request, res: Response): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const outcome: unknown = rateLimits.customer(req, res, (error?: unknown) => (error ? reject(error) : resolve()));
    if (outcome instanceof Promise) outcome.catch(reject);
  });
}

/** Before an event stream opens: the customer's open streams are at most its tier's TIER_MAX_STREAMS (429 past it). */
export function takeStreamPlace(
  leases: LeaseSemaphores,
  config: Pick<Config, 'tierMaxStreams'>,
  principal: Principal,
  res: Response,
): Promise<void> {
  return holdPlace(leases, 'streams', config.tierMaxStreams[principal.tier], principal, res);
}
