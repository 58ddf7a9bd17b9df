import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** One sender's steps waiting for a slice, in the order they came. */
interface Line {
  steps: Array<() => void>;
  next: number;
}

/**
 * Runs queued request steps a slice at a time: steps for at most `sliceMs`, then the event loop polls its
 * sockets again before the next slice. A burst of thousands of requests (an enterprise customer's waves of
 * 3,000 concurrent `GET /jobs`) or a Redis reply that resolves hundreds of them at once otherwise runs as one
 * block of work that held the loop for 150–240 ms, and `/health` (answered between slices, never queued)
 * waited behind all of it (issue 15).
 *
 * Steps wait in one line per sender (`run`'s key: a credential, a customer) and the lines take turns, a step
 * each, so a sender's one request waits for one step of each other sender's, not for all of a flood's: behind
 * a wave of 3,000 requests from one customer another's request had waited ~120 ms for its first step. A
 * sender's own steps run in the order they came.
 */
export class LoopSlices {
  private readonly lines = new Map<string, Line>();
  /** Keys of the lines with steps waiting, in turn order (from `head`). */
  private turns: string[] = [];
  private head = 0;
  private scheduled = false;
  private count = 0;

  /** @param sliceMs 0: every step runs at once, as if there were no slices. */
  constructor(private readonly sliceMs: number) {}

  /** Queues `step` in the line of `key` (its sender). */
  run(step: () => void, key = ''): void {
    if (this.sliceMs === 0) return step();
    const line = this.lines.get(key);
    if (line) line.steps.push(step);
    else {
      this.lines.set(key, { steps: [step], next: 0 });
      this.turns.push(key);
    }
    this.count++;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drain);
  }

  /** Steps waiting for a slice (for tests). */
  get waiting(): number {
    return this.count;
  }

  // An immediate set while immediates run waits for the loop's next turn, after its poll: that is the yield.
  private readonly drain = (): void => {
    const until = performance.now() + this.sliceMs;
    try {
      do this.nextStep()();
      while (this.count > 0 && performance.now() < until);
    } finally {
      // Also after a step threw: the steps behind it still run.
      this.afterSlice();
    }
  };

  /** The step whose turn it is, taken from its line; its line goes to the back of the turns if it has more. */
  private nextStep(): () => void {
    const key = this.turns[this.head++]!;
    const line = this.lines.get(key)!;
    const step = line.steps[line.next++]!;
    this.count--;
    if (line.next < line.steps.length) {
      this.turns.push(key);
      if (line.next > 1024) {
        line.steps = line.steps.slice(line.next);
        line.next = 0;
      }
    } else this.lines.delete(key);
    if (this.head > 1024) {
      this.turns = this.turns.slice(this.head);
      this.head = 0;
    }
    return step;
  }

  private afterSlice(): void {
    if (this.count === 0) {
      this.turns = [];
      this.head = 0;
      this.scheduled = false;
      return;
    }
    setImmediate(this.drain);
  }
}

/**
 * `next` in a slice, unless the client has gone meanwhile: a flood of requests that are sent and dropped costs
 * their parsing and nothing more. Nothing is held yet at the first step, and what a later one holds (an
 * in-flight place) is given back when the response closes.
 */
function goOnInSlice(slices: LoopSlices, key: string, res: Response, next: NextFunction, error?: unknown): void {
  slices.run(() => {
    if (!res.closed) next(error);
  }, key);
}

/**
 * Who sent a request, as far as can be told before authentication (nothing is verified here: this only picks
 * the line it waits in): its credential (bearer token or API key, else the console's session cookie), else
 * its address. A sender that varies its credential on every request gets a line for each, as if in one
 * shared line; such requests fail authentication at their first step.
 */
function senderOf(req: Request): string {
  return req.headers.authorization ?? req.headers.cookie ?? req.socket.remoteAddress ?? '';
}

/**
 * Goes on with the request in a slice rather than at once, in its sender's line (`senderOf`), except for
 * `passThrough` requests (`/health`).
 */
export function continueInSlices(slices: LoopSlices, passThrough: (req: Request) => boolean): RequestHandler {
  return (req, res, next) => {
    if (passThrough(req)) return next();
    goOnInSlice(slices, senderOf(req), res, next);
  };
}

/**
 * `handler`, whose (asynchronous) going on — `next()` or its error — runs in a slice, in the line of `keyOf`
 * the request (after authentication, its customer).
 */
export function sliced(slices: LoopSlices, handler: RequestHandler, keyOf: (req: Request) => string): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const goOn = (error?: unknown) => goOnInSlice(slices, keyOf(req), res, next, error);
    const outcome: unknown = handler(req, res, goOn);
    if (outcome instanceof Promise) outcome.catch(goOn);
  };
}
