import type { RequestHandler } from 'express';
import { principalOf } from './auth/authenticate.js';
import { isEventStream } from './concurrency-limits.js';
import { whenClosed } from './request-lifecycle.js';

/** A read waiting in its customer's line: resolves with its leave function once it may start. */
export type WaitingRead = Promise<() => void> & { withdraw(): void };

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

  /**
   * The leave function at once when the customer may read, else a promise of it that can be withdrawn (the
   * client went away: it leaves the line and is never started); call leave once the read is over (more calls do
   * nothing).
   */
  enter(customerId: string): (() => void) | WaitingRead {
    let line = this.lines.get(customerId);
    if (!line) {
      line = { reading: 0, waiting: [] };
      this.lines.set(customerId, line);
    }
    if (line.waiting.length === 0 && this.mayStart(line)) return this.start(customerId, line);
    const queued = line;
    let begin!: (leave: () => void) => void;
    const started = new Promise<() => void>((resolve) => (begin = resolve));
    if (queued.waiting.push(begin) === 1) this.turns.push(customerId);
    return Object.assign(started, { withdraw: () => this.withdraw(customerId, queued, begin) });
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

  /** Takes a read that has not started out of its line; one that has started (or left) is not touched. */
  private withdraw(customerId: string, line: Line, begin: (leave: () => void) => void): void {
    const at = line.waiting.indexOf(begin);
    if (at < 0) return;
    line.waiting.splice(at, 1);
    if (line.waiting.length > 0) return;
    this.turns.splice(this.turns.indexOf(customerId), 1);
    if (line.reading === 0) this.lines.delete(customerId);
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

/**
 * Holds an authenticated GET or HEAD (but an event stream, which stays open for minutes and holds no database
 * connection while it does) in its customer's line until its answer closes.
 */
export function customerReadGate(gate: CustomerReadGate): RequestHandler {
  return (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || isEventStream(req)) return next();
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
    // A client gone while waiting leaves the line: its aborted reads cannot pile up behind its in-flight cap,
    // whose places closed requests give back.
    whenClosed(res, entered.withdraw);
    void entered.then(proceed);
  };
}
