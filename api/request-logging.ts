import type { Logger } from 'pino';
import type { RequestObserver } from './request-lifecycle.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** A logger carrying the request id. */
    log: Logger;
  }
}

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
 * One log line per request, kept cheap because it runs on every call (pino-http cost a fifth of a
 * trivial route's throughput): the line is built only when its level is enabled (5xx at error, 4xx at
 * info, the rest at debug). Requests whose client went away before the answer are not logged.
 */
export function accessLog(logger: Logger): RequestObserver {
  return ({ req, res, durationMs, sent }) => {
    if (!sent) return;
    const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
    if (!logger.isLevelEnabled(level) || (level === 'debug' && quietPaths.has(req.originalUrl))) return;
    req.log[level]({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(durationMs * 10) / 10 }, 'request');
  };
}
