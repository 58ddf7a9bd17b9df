import type { Request, RequestHandler, Response } from 'express';
import { randomUUID } from 'node:crypto';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: `X-Request-Id` from the client when well-formed, else a new UUID. */
    id: string;
  }
}

/** A request that has ended: its response was sent (`sent`) or the client went away first. */
export interface EndedRequest {
  req: Request;
  res: Response;
  /** When the request arrived (epoch ms). */
  startedAt: number;
  durationMs: number;
  /** The whole response was handed to the socket (false: the connection closed first). */
  sent: boolean;
  /** Bytes of the response body: its Content-Length, else what the socket wrote meanwhile (streams such as SSE). */
  bytesOut(): number;
}

/** Told once about every request when it has ended. Must not throw. */
export type RequestObserver = (request: EndedRequest) => void;

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/;

/** Callbacks a response runs when it closes, after the observers (`whenClosed`): set by `requestLifecycle`. */
const closers = Symbol('closers');
type WithClosers = Response & { [closers]?: Array<() => void> };

/**
 * Runs `callback` once `res` has closed (answer sent, or the client went away): on the lifecycle's own `close`
 * listener when `requestLifecycle` saw the request, else on a listener of its own. Each listener added to a
 * response costs every request; the in-flight place of each metered request is given back this way.
 */
export function whenClosed(res: Response, callback: () => void): void {
  const list = (res as WithClosers)[closers];
  if (list) list.push(callback);
  else res.once('close', callback);
}

/**
 * Gives each request its id (and the `X-Request-Id` header), then tells every observer (metrics, the
 * access log, the usage record) when it has ended — through one `close` listener for all of them,
 * since a busy API handles thousands of requests a second and each listener costs. Mount it first, so
 * durations include every other middleware.
 */
export function requestLifecycle(observers: readonly RequestObserver[]): RequestHandler {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && requestIdPattern.test(incoming) ? incoming : randomUUID();
    req.id = id;
    res.setHeader('X-Request-Id', id);
    const startedAt = Date.now();
    const started = performance.now();
    const socketBefore = req.socket?.bytesWritten ?? 0;
    const callbacks: Array<() => void> = [];
    (res as WithClosers)[closers] = callbacks;
    // `close` comes after `finish` when the response was sent, and alone when the client went away; a
    // response emits it once, so `on` (no `once` wrapper per request).
    res.on('close', () => {
      const ended: EndedRequest = {
        req,
        res,
        startedAt,
        durationMs: performance.now() - started,
        sent: res.writableFinished,
        bytesOut: () => {
          const length = Number(res.getHeader('content-length'));
          if (Number.isFinite(length) && length >= 0) return length;
          return Math.max(0, (req.socket?.bytesWritten ?? socketBefore) - socketBefore);
        },
      };
      for (const observe of observers) observe(ended);
      for (const callback of callbacks) callback();
    });
    next();
  };
}
