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
    req.log[level](
      { method: req.method, url: redactUrl(req.originalUrl), status: res.statusCode, ms: Math.round(durationMs * 10) / 10 },
      'request',
    );
  };
}

/** Query parameters whose value is a credential whatever it looks like (`access_token`, `api_key`, `password`…). */
const secretParameter = /token|key|password|passwd|secret|signature|credential|session/i;
/** Credentials recognisable anywhere: API keys, webhook secrets, refresh tokens, JWTs. */
const secretValue = /sk_live_[A-Za-z0-9_-]|whsec_[A-Za-z0-9+/=_-]|rt_[A-Za-z0-9_-]{16}|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./;
const redacted = '[REDACTED]';

function decoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * The URL as an access log may show it: a path segment or query value holding a credential, and every
 * value of a parameter named like one, become `[REDACTED]` (clients put tokens in URLs; logs outlive them).
 */
export function redactUrl(url: string): string {
  const queryAt = url.indexOf('?');
  const path = (queryAt === -1 ? url : url.slice(0, queryAt))
    .split('/')
    .map((segment) => (secretValue.test(decoded(segment)) ? redacted : segment))
    .join('/');
  if (queryAt === -1) return path;
  const query = url
    .slice(queryAt + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      const value = equals === -1 ? '' : pair.slice(equals + 1);
      if (secretParameter.test(decoded(name)) || secretValue.test(decoded(value))) return `${name}=${redacted}`;
      return secretValue.test(decoded(name)) ? redacted : pair;
    })
    .join('&');
  return `${path}?${query}`;
}
