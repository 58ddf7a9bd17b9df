import { createServer, type Server } from 'node:http';
import type { Express, RequestHandler } from 'express';
import type { Config } from '../config.js';
import { answerClientErrorsWithProblems } from './client-errors.js';
import { ProblemError } from './problems.js';

/** Longest a client may take to send its request line and headers (at most 16 KiB together), in ms, unless the request timeout is shorter. */
export const headersTimeoutMs = 20_000;

/**
 * The API's HTTP server for `app`, not yet listening. A request must have arrived whole within
 * `API_REQUEST_TIMEOUT_MS` of its first byte, and its headers within `headersTimeoutMs`; past either the
 * client gets 408 (api/client-errors.ts) and the connection is closed. Both time only the request's
 * arrival: once it is in, the answer may take as long as it takes (an event stream, a `Prefer: wait=30`).
 * Node checks its connections for either every `connectionsCheckingInterval` (default 30 s, which would let
 * a stalled request hold its socket for the timeout plus up to 30 s): here a tenth of the headers timeout,
 * between 50 ms and 2 s. The check walks only the connections whose request is still arriving.
 *
 * `requireHostHeader: false`: Node answers an HTTP/1.1 request without `Host` with a bare 400 and no body;
 * the app refuses it instead (`requireHost`, api/app.ts), with a problem like every other error.
 */
export function createApiServer(app: Express, config: Pick<Config, 'apiRequestTimeoutMs'>): Server {
  const requestTimeout = config.apiRequestTimeoutMs;
  const headersTimeout = Math.min(headersTimeoutMs, requestTimeout);
  const server = createServer(
    {
      requestTimeout,
      headersTimeout,
      connectionsCheckingInterval: Math.max(50, Math.min(2_000, Math.floor(headersTimeout / 10))),
      requireHostHeader: false,
    },
    app,
  );
  answerClientErrorsWithProblems(server);
  return server;
}

/**
 * An HTTP/1.1 request without `Host` answers 400 (RFC 9112 §3.2: a server MUST), as a problem: the check Node
 * makes is turned off (`createApiServer`) because its answer has no body. One header lookup per request.
 */
export const requireHost: RequestHandler = (req, _res, next) => {
  if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
    throw new ProblemError('validation', 'an HTTP/1.1 request must carry a Host header', {
      errors: [{ field: 'header.host', message: 'missing' }],
    });
  }
  next();
};
