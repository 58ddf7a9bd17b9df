import type { RequestHandler } from 'express';
import { principalOf } from './auth/authenticate.js';
import { whenClosed } from './request-lifecycle.js';

/** The job event stream route: it stays open for minutes and holds no database connection while it does. */
const eventStreamPath = /^\/jobs\/[^/]+\/events$/;

interface Line {
  reading: number;
  waiting: Array<() => void>;
}

/**
 * Per API process: one customer's reads (GET requests, each holding a database connection of the process's
 * pool while it runs its query) running at once are at most `perCustomer`; its others wait in its own line,
 * first in first out. A read never waits behind another customer's: an enterprise customer's 200 concurrent
 * `GET /jobs?limit=100` (its in-flight cap) otherwise filled the pool's queue, and every other tenant's request
 * that needed a connection — a submit's insert, a poll — waited behind all of them (a victim's `Prefer: wait`
 * p50 284 ms, issue 15). Writes are not held here: a submit's insert joins a group commit shared by everyone.
 */
export class CustomerReadGate {
  private readonly lines = new Map<string, Line>();

  constructor(private readonly perCustomer: number) {}

  /** Resolves when the customer may read; call the returned function once the read is over (more calls do nothing). */
  enter(customerId: string): (() => void) | Promise<() => void> {
    let line = this.lines.get(customerId);
    if (!line) {
      line = { reading: 0, waiting: [] };
      this.lines.set(customerId, line);
    }
    if (line.reading < this.perCustomer) {
      line.reading += 1;
      return this.leave(customerId, line);
    }
    const queued = line;
    return new Promise((resolve) => queued.waiting.push(() => resolve(this.leave(customerId, queued))));
  }

  /** Customers with a read running or waiting here (for tests and gauges). */
  get customers(): number {
    return this.lines.size;
  }

  private leave(customerId: string, line: Line): () => void {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = line.waiting.shift();
      // The place passes straight to the next in line: `reading` stays.
      if (next) return next();
      line.reading -= 1;
      if (line.reading === 0) this.lines.delete(customerId);
    };
  }
}

/** Holds an authenticated GET or HEAD (but an event stream) in its customer's line until its answer closes. */
export function customerReadGate(gate: CustomerReadGate): RequestHandler {
  return (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || eventStreamPath.test(req.path)) return next();
    const entered = gate.enter(principalOf(req).customerId);
    const proceed = (leave: () => void) => {
      if (res.closed) {
        leave();
        return;
      }
      whenClosed(res, leave);
      next();
    };
    if (typeof entered === 'function') return proceed(entered);
    entered.then(proceed, next);
  };
}
