import type { RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: `X-Request-Id` from the client when well-formed, else a new UUID. */
    id: string;
    /** A logger carrying the request id. */
    log: Logger;
  }
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/;
const quietPaths = new Set(['/api/v1/health', '/api/v1/ready', '/api/v1/metrics']);

/**
 * `req.log`, built on first use (most requests never log): a child logger carrying the request id.
 * A getter on Express's request prototype costs a request nothing until it is read.
 */
export function installRequestLogger(requestPrototype: object, logger: Logger): void {
  const loggers = new WeakMap<object, Logger>();
  Object.defineProperty(requestPrototype, 'log', {
    configurable: true,
    get(this: { id: string }) {
      let child = loggers.get(this);
      if (!child) loggers.set(this, (child = logger.child({ reqId: this.id })));
      return child;
    },
  });
}

/**
 * Request ids and one log line per request, kept cheap because it runs on every call (pino-http cost
 * a fifth of a trivial route's throughput): the access line is built only when its level is enabled
 * (5xx at error, 4xx at info, the rest at debug).
 */
export function requestLogging(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && requestIdPattern.test(incoming) ? incoming : randomUUID();
    req.id = id;
    res.setHeader('X-Request-Id', id);
    const started = performance.now();
    res.once('finish', () => {
      const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
      if (!logger.isLevelEnabled(level) || (level === 'debug' && quietPaths.has(req.originalUrl))) return;
      req.log[level]({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 }, 'request');
    });
    next();
  };
}
