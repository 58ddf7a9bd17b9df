import type { RequestHandler } from 'express';
import { principalOf } from './auth/authenticate.js';
import { whenClosed } from './request-lifecycle.js';

/** The job event stream route: it stays open for minutes and holds no database connection while it does. */
const eventStreamPath = /^\/jobs\/[^/]+\/events$/;

interface Line {
  reading: number;
  waiting: Array<(leave: () => void) => void>;
}

/**
 * Per API process: reads (GET requests, each holding one of the process's database connections while its query
 * runs) run at most `atOnce` at a time, one customer's at most `perCustomer`; the others wait in their
 * customer's own line, and a place that frees goes to the next customer in turn (round robin over the
 * customers waiting), not to whoever asked first. So a read waits for at most one read of each other customer,
 * however many one customer — or one attacker's many accounts — sent, and reads never take the connections a
 * submit's insert needs. Without it an enterprise customer's 200 concurrent `GET /jobs?limit=100` (its
 * in-flight cap) filled the pool's queue, first in first out, and every other tenant's request that needed a
 * connection waited behind all of them (a victim's `Prefer: wait` p50 284 ms, issue 15). Writes are not held
 * here: a submit's insert joins a group commit shared by everyone.
 */
export class CustomerReadGate {
  private readonly lines = new Map<string, Line>();
  /** Customers with a read waiting, in the order their turn comes. */
  private readonly turns: string[] = [];
  private reading = 0;

  constructor(
    private readonly atOnce: number,
    private readonly perCustomer: number,
  ) {}

  /** The leave function at once when the customer may read, else a promise of it; call it once the read is over (more calls do nothing). */
  enter(customerId: string): (() => void) | Promise<() => void> {
    let line = this.lines.get(customerId);
    if (!line) {
      line = { reading: 0, waiting: [] };
      this.lines.set(customerId, line);
    }
    if (line.waiting.length === 0 && this.mayStart(line)) return this.start(customerId, line);
    const queued = line;
    if (queued.waiting.length === 0) this.turns.push(customerId);
    return new Promise((resolve) => queued.waiting.push(resolve));
  }

  /** Customers with a read running or waiting here (for tests and gauges). */
  get customers(): number {
    return this.lines.size;
  }

  private mayStart(line: Line): boolean {
    return this.reading < this.atOnce && line.reading < this.perCustomer;
  }

  private start(customerId: string, line: Line): () => void {
    this.reading += 1;
    line.reading += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.reading -= 1;
      line.reading -= 1;
      if (line.reading === 0 && line.waiting.length === 0) this.lines.delete(customerId);
      this.dispatch();
    };
  }

  /** Hands free places to waiting reads, one customer's at a time in turn; a customer at its own cap is passed over. */
  private dispatch(): void {
    for (let looked = 0; looked < this.turns.length && this.reading < this.atOnce;) {
      const customerId = this.turns.shift()!;
      const line = this.lines.get(customerId)!;
      if (!this.mayStart(line)) {
        this.turns.push(customerId);
        looked += 1;
        continue;
      }
      line.waiting.shift()!(this.start(customerId, line));
      if (line.waiting.length > 0) this.turns.push(customerId);
      looked = 0;
    }
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
    void entered.then(proceed);
  };
}
