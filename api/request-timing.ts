import type { RequestHandler } from 'express';
import { monotonicMs } from '../lib/stage-marks.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** Stage timings of this request, kept only while SERVER_TIMING is on. */
    timing?: RequestTiming;
  }
}

interface RequestTiming {
  started: number;
  /** `started` on the machine's monotonic clock, which the worker's stage marks count from. */
  origin: number;
  stages: Array<[name: string, ms: number]>;
}

const format = (ms: number): string => ms.toFixed(3);

/**
 * With SERVER_TIMING on, every answer carries `Server-Timing: <stage>;dur=<ms>, …, route;dur=<ms>, total;dur=<ms>`:
 * how long each middleware wrapped in `timedStage` took (from its call to its `next`), what remained until
 * the headers were written (`route`: the handler, its database reads and the serialising), and the whole
 * (`total`, from the first middleware to the headers). A diagnostic (the request-latency bench reads it);
 * off by default, when `start` and `timedStage` hand back their middleware untouched.
 */
export function requestTiming(enabled: boolean): {
  start: RequestHandler | null;
  timedStage: (name: string, handler: RequestHandler) => RequestHandler;
} {
  if (!enabled) return { start: null, timedStage: (_name, handler) => handler };
  const start: RequestHandler = (req, res, next) => {
    const timing: RequestTiming = { started: performance.now(), origin: monotonicMs(), stages: [] };
    req.timing = timing;
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
      const total = performance.now() - timing.started;
      let staged = 0;
      const parts = timing.stages.map(([name, ms]) => {
        staged += ms;
        return `${name};dur=${format(ms)}`;
      });
      parts.push(`route;dur=${format(Math.max(0, total - staged))}`, `total;dur=${format(total)}`);
      if (!this.headersSent) this.setHeader('Server-Timing', parts.join(', '));
      return writeHead.apply(this, args);
    } as typeof writeHead;
    next();
  };
  const timedStage = (name: string, handler: RequestHandler): RequestHandler => {
    const timed: RequestHandler = (req, res, next) => {
      const timing = req.timing;
      if (!timing) return handler(req, res, next);
      const entered = performance.now();
      let recorded = false;
      const record = () => {
        if (recorded) return;
        recorded = true;
        timing.stages.push([name, performance.now() - entered]);
      };
      try {
        const outcome: unknown = handler(req, res, (error?: unknown) => {
          record();
          next(error as never);
        });
        // A refusal (401, 429) rejects instead of calling `next`: it is timed all the same.
        if (outcome instanceof Promise) outcome.then(record, record);
        return outcome as ReturnType<RequestHandler>;
      } catch (error) {
        record();
        throw error;
      }
    };
    return Object.assign(timed, 'stack' in handler ? { stack: (handler as { stack: unknown }).stack } : {});
  };
  return { start, timedStage };
}

/** Records a stage a route timed itself (`started`: its `performance.now()`), when SERVER_TIMING is on; else nothing. */
export function recordStage(req: { timing?: RequestTiming }, name: string, started: number): void {
  req.timing?.stages.push([name, performance.now() - started]);
}

/** When the request began on the machine's monotonic clock (`monotonicMs`), when SERVER_TIMING is on; else undefined. */
export function timingOrigin(req: { timing?: RequestTiming }): number | undefined {
  return req.timing?.origin;
}
