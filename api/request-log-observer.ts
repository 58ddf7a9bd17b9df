import type { Request, Response } from 'express';
import type { RequestLogRecorder } from '../db/request-log-recorder.js';
import { principalAwaitingTerms, principalOfBearer, type BearerCredentials } from './auth/authenticate.js';
import type { MaybePromise, Principal } from './auth/principal.js';
import type { RequestObserver } from './request-lifecycle.js';

/** A call's row in the request log, less who made it. */
interface Call {
  timestamp: Date;
  method: string;
  statusCode: number;
  bytesOut: number;
  /** How many requests the call counts as (`countAsRequests`). */
  requests: number;
}

/**
 * The request observer (see `requestLifecycle`) that feeds the request log: when a request has ended,
 * whether its answer was sent or the client went away, records every call under /api/v1 made with valid
 * credentials, whatever its status, with the body bytes written. Most were authenticated on the way
 * (`req.principal`); a call refused 403 `tos-required` by its principal all the same
 * (`principalAwaitingTerms`); one that ended before its route authenticated it (a malformed, non-JSON or
 * oversized body, an unknown path) by its bearer header, resolved as `authenticate` would
 * (`principalOfBearer`). Calls without valid credentials are no customer's usage: no row.
 */
export function requestLogObserver(recorder: RequestLogRecorder, credentials: BearerCredentials): RequestObserver {
  return ({ req, res, startedAt, bytesOut }) => {
    const caller = req.principal ?? principalAwaitingTerms(req) ?? callerOfUnauthenticated(req, credentials);
    if (!caller) return;
    // Read now: by the time an uncached principal has been loaded, the socket may carry the next request.
    const call: Call = {
      timestamp: new Date(startedAt),
      method: req.method,
      statusCode: res.statusCode,
      bytesOut: bytesOut(),
      requests: meteredRequestsOf(res),
    };
    if (!(caller instanceof Promise)) return record(recorder, caller, call);
    // An observer must not throw: a failed lookup (the database down) costs that one row.
    caller.then((principal) => principal && record(recorder, principal, call)).catch(() => undefined);
  };
}

function record(recorder: RequestLogRecorder, principal: Principal, call: Call): void {
  const row = {
    timestamp: call.timestamp,
    customerId: principal.customerId,
    serviceType: principal.serviceType,
    method: call.method,
    statusCode: call.statusCode,
    bytesOut: call.bytesOut,
  };
  recorder.record(row);
  // A call that counts as several requests (each job of an accepted bulk submit, SPEC §9) is recorded as
  // that many rows, so metering counts and bills each; the answer's bytes go on the first. The others are
  // one entry in memory (`copies`), made rows by the INSERT.
  if (call.requests > 1) recorder.record({ ...row, bytesOut: 0, copies: call.requests - 1 });
}

/** Paths under /api/v1 that are never a customer's call, whatever credentials they carry. */
const probePaths = ['/api/v1/health', '/api/v1/ready', '/api/v1/metrics'];

/**
 * The principal of a request that ended without being authenticated, from its bearer header; null without
 * one, or outside the customer API (/api/v1 less its probes). `originalUrl`, not `path`: a router the
 * request is still inside has cut its mount path from `url`.
 */
function callerOfUnauthenticated(req: Request, credentials: BearerCredentials): MaybePromise<Principal | null> {
  const header = req.headers.authorization;
  if (header === undefined) return null;
  const query = req.originalUrl.indexOf('?');
  const path = query === -1 ? req.originalUrl : req.originalUrl.slice(0, query);
  if (path !== '/api/v1' && !path.startsWith('/api/v1/')) return null;
  if (probePaths.some((probe) => path === probe || path.startsWith(`${probe}/`))) return null;
  return principalOfBearer(credentials, req);
}

/** Marks the answer as counting for `count` requests in the request log (default one). */
export function countAsRequests(res: Response, count: number): void {
  res.locals.meteredRequests = count;
}

function meteredRequestsOf(res: Response): number {
  const count: unknown = res.locals.meteredRequests;
  return typeof count === 'number' && Number.isInteger(count) && count > 1 ? count : 1;
}
