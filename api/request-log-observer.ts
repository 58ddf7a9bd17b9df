import type { Response } from 'express';
import type { RequestLogRecorder } from '../db/request-log-recorder.js';
import type { RequestObserver } from './request-lifecycle.js';

/**
 * The request observer (see `requestLifecycle`) that feeds the request log: when a request has ended,
 * whether its answer was sent or the client went away, records the call if authentication set
 * `req.principal` on the way — so every authenticated call is recorded, whichever router authenticated
 * it, with the body bytes written.
 */
export function requestLogObserver(recorder: RequestLogRecorder): RequestObserver {
  return ({ req, res, startedAt, bytesOut }) => {
    const principal = req.principal;
    if (!principal) return;
    const row = {
      timestamp: new Date(startedAt),
      customerId: principal.customerId,
      serviceType: principal.serviceType,
      method: req.method,
      statusCode: res.statusCode,
      bytesOut: bytesOut(),
    };
    recorder.record(row);
    // A call that counts as several requests (each job of an accepted bulk submit, SPEC §9) is recorded as
    // that many rows, so metering counts and bills each; the answer's bytes go on the first. The others are
    // one entry in memory (`copies`), made rows by the INSERT.
    const count = meteredRequestsOf(res);
    if (count > 1) recorder.record({ ...row, bytesOut: 0, copies: count - 1 });
  };
}

/** Marks the answer as counting for `count` requests in the request log (default one). */
export function countAsRequests(res: Response, count: number): void {
  res.locals.meteredRequests = count;
}

function meteredRequestsOf(res: Response): number {
  const count: unknown = res.locals.meteredRequests;
  return typeof count === 'number' && Number.isInteger(count) && count > 1 ? count : 1;
}
