import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Runs queued request steps a slice at a time: steps for at most `sliceMs`, then the event loop polls its
 * sockets again before the next slice. A burst of thousands of requests (an enterprise customer's waves of
 * 3,000 concurrent `GET /jobs`) or a Redis reply that resolves hundreds of them at once otherwise runs as one
 * block of work that held the loop for 150–240 ms, and `/health` (answered between slices, never queued)
 * waited behind all of it (issue 15). Steps run in the order they came.
 */
export class LoopSlices {
  private steps: Array<() => void> = [];
  private next = 0;
  private scheduled = false;

  /** @param sliceMs 0: every step runs at once, as if there were no slices. */
  constructor(private readonly sliceMs: number) {}

  run(step: () => void): void {
    if (this.sliceMs === 0) return step();
    this.steps.push(step);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drain);
  }

  /** Steps waiting for a slice (for tests). */
  get waiting(): number {
    return this.steps.length - this.next;
  }

  // An immediate set while immediates run waits for the loop's next turn, after its poll: that is the yield.
  private readonly drain = (): void => {
    const until = performance.now() + this.sliceMs;
    try {
      do this.steps[this.next++]!();
      while (this.next < this.steps.length && performance.now() < until);
    } finally {
      // Also after a step threw: the steps behind it still run.
      this.afterSlice();
    }
  };

  private afterSlice(): void {
    if (this.next === this.steps.length) {
      this.steps = [];
      this.next = 0;
      this.scheduled = false;
      return;
    }
    if (this.next > 1024) {
      this.steps = this.steps.slice(this.next);
      this.next = 0;
    }
    setImmediate(this.drain);
  }
}

/**
 * `next` in a slice, unless the client has gone meanwhile: a flood of requests that are sent and dropped costs
 * their parsing and nothing more. Nothing is held yet at the first step, and what a later one holds (an
 * in-flight place) is given back when the response closes.
 */
function goOnInSlice(slices: LoopSlices, res: Response, next: NextFunction, error?: unknown): void {
  slices.run(() => {
    if (!res.closed) next(error);
  });
}

/** Goes on with the request in a slice rather than at once, except for `passThrough` requests (`/health`). */
export function continueInSlices(slices: LoopSlices, passThrough: (req: Request) => boolean): RequestHandler {
  return (req, res, next) => {
    if (passThrough(req)) return next();
    goOnInSlice(slices, res, next);
  };
}

/** `handler`, whose (asynchronous) going on — `next()` or its error — runs in a slice. */
export function sliced(slices: LoopSlices, handler: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const goOn = (error?: unknown) => goOnInSlice(slices, res, next, error);
    const outcome: unknown = handler(req, res, goOn);
    if (outcome instanceof Promise) outcome.catch(goOn);
  };
}
