import type { Request, RequestHandler } from 'express';

/** Per request authenticated before its body was read: its refusal (the problem it will answer), or null if admitted. */
const outcomes = new WeakMap<Request, { refusal: unknown }>();

/**
 * Runs `authenticateStep` (the route's own `authenticate`) before the body stage, without refusing yet:
 * the body is still read and checked first, so a request's 413, 415 and 400 for malformed JSON come before
 * its 401 as they always did, but the body stage knows whether a customer sent it (`earlyRefusalOf`). The
 * route's authenticate step, wrapped in `authenticateUnlessEarly`, then answers the held refusal or lets the
 * admitted request through without authenticating it twice.
 */
export function authenticateEarly(authenticateStep: RequestHandler): RequestHandler {
  return (req, res, next) =>
    new Promise<unknown>((settle) => {
      try {
        const result: unknown = authenticateStep(req, res, (error?: unknown) => settle(error ?? null));
        if (result instanceof Promise) result.then(undefined, settle);
      } catch (error) {
        settle(error);
      }
    }).then((refusal) => {
      // Called here, not inside the step: an error thrown further on must reach Express, not be taken for a refusal.
      outcomes.set(req, { refusal });
      next();
    });
}

/**
 * What `authenticateEarly` decided for `req`: null when it admitted the request (`req.principal` is set),
 * else the problem its authenticate step will answer (401, 403), or undefined when it did not run.
 */
export function earlyRefusalOf(req: Request): unknown {
  return outcomes.get(req)?.refusal;
}

/** `authenticateStep`, unless `authenticateEarly` ran for the request: then its outcome, refused or admitted. */
export function authenticateUnlessEarly(authenticateStep: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const outcome = outcomes.get(req);
    if (!outcome) return authenticateStep(req, res, next);
    if (outcome.refusal !== null) throw outcome.refusal;
    next();
  };
}
