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
    // `close` comes after `finish` when the response was sent, and alone when the client went away.
    res.once('close', () => {
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
    });
    next();
  };
}
