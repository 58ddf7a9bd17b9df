import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * One middleware that runs `handlers` in turn, as `app.use(a); app.use(b); …` would, but through one router
 * layer instead of one each. The router's step from layer to layer (path matching, a match object, a
 * parameter callback and a URL restore per layer) cost every request ~2.5 µs per layer; the app-wide
 * middleware every request passes are chained here (issue 17: http-submit's ratio).
 *
 * As in Express 5: a handler that throws, or whose returned promise rejects, hands its error on; `next(error)`
 * leaves the chain with it (error handlers are not chained); `next('route')` goes on with the next handler,
 * as it does between `app.use` middleware.
 */
export function chain(...handlers: RequestHandler[]): RequestHandler & { stack: unknown[] } {
  for (const handler of handlers) {
    if (handler.length >= 4) throw new TypeError('chain: error handlers (four arguments) cannot be chained');
  }
  const chained: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    let index = 0;
    const step = (error?: unknown): void => {
      if (error !== undefined && error !== null && error !== 'route') return next(error);
      const handler = handlers[index++];
      if (handler === undefined) return next();
      try {
        const outcome: unknown = handler(req, res, step);
        if (outcome instanceof Promise) outcome.catch((rejection: unknown) => next(rejection || new Error('Rejected promise')));
      } catch (thrown) {
        next(thrown);
      }
    };
    step();
  };
  // The layers of the routers inside (each mounted at its parent's path), for route walkers such as the
  // OpenAPI coverage test, as if they were mounted on the parent themselves.
  const stack = handlers.flatMap((handler) => (handler as { stack?: unknown[] }).stack ?? []);
  return Object.assign(chained, { stack });
}
