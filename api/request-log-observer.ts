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
    recorder.record({
      timestamp: new Date(startedAt),
      customerId: principal.customerId,
      serviceType: principal.serviceType,
      method: req.method,
      statusCode: res.statusCode,
      bytesOut: bytesOut(),
    });
  };
}
