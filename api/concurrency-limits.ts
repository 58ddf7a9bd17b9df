import type { RequestHandler, Response } from 'express';
import type { Config } from '../config.js';
import type { LeaseSemaphores } from '../lib/lease-semaphore.js';
import { rateLimitedRequests } from '../lib/metrics/catalog.js';
import type { Principal } from './auth/principal.js';
import { principalOf } from './auth/authenticate.js';
import { ProblemError } from './problems.js';

/** What a refused request is told to wait: in-flight requests end within moments. */
const retryAfterSeconds = 1;

/** The job event stream route, whose requests hold a stream place instead of an in-flight one. */
const eventStreamPath = /^\/jobs\/[^/]+\/events$/;

/**
 * The routes that write up to 16 MiB in one request: each holds a database connection for its INSERT, which
 * can take seconds. Counted apart (TIER_MAX_BULK_IN_FLIGHT) and well below the API's pool of 10: with only
 * the in-flight cap (starter 10), one customer's ten slow bulks held every connection and stalled every tenant.
 */
const bulkWrites = new Set(['/jobs/bulk', '/substrates/batch', '/batches']);

type Kind = 'in-flight' | 'streams' | 'bulk-writes';

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
  const lease = await leases.acquire(`${kind}:${principal.customerId}`, limit);
  if ('full' in lease) {
    rateLimitedRequests.inc({ limiter: kind });
    throw new ProblemError(
      'rate-limited',
      `too many ${refusedWhat[kind]}: tier ${principal.tier} allows ${limit} at once for a customer; retry in ${retryAfterSeconds} s`,
      { headers: { 'Retry-After': String(retryAfterSeconds) }, limit, in_use: lease.full },
    );
  }
  if (res.closed) lease.release();
  else res.once('close', () => lease.release());
}

/**
 * After authentication: a customer's requests in flight at once, across every API process, are at most its
 * tier's TIER_MAX_IN_FLIGHT (enterprise too: 3,000 concurrent requests from one customer had held another
 * tenant's for 5.5 s), and its bulk writes at most TIER_MAX_BULK_IN_FLIGHT. Event streams are counted apart
 * (`takeStreamPlace`), as they stay open for minutes.
 */
export function inFlightLimit(leases: LeaseSemaphores, config: Pick<Config, 'tierMaxInFlight' | 'tierMaxBulkInFlight'>): RequestHandler {
  return async (req, res, next) => {
    const path = req.path; // a getter that parses the URL: read it once
    if (req.method === 'GET' && eventStreamPath.test(path)) return next();
    const principal = principalOf(req);
    await holdPlace(leases, 'in-flight', config.tierMaxInFlight[principal.tier], principal, res);
    if (req.method === 'POST' && bulkWrites.has(path)) {
      await holdPlace(leases, 'bulk-writes', config.tierMaxBulkInFlight[principal.tier], principal, res);
    }
    next();
  };
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
