/** Tuning of the per-customer queue. */
export interface TenantQueueOptions {
  /**
   * A customer whose tasks hold a thread longer than this (ms; its recent thread time, each task weighted by
   * the time it held its thread: see `heldMsOf`) does not take the last free thread while it already runs a
   * task and another customer is active: that thread is kept for the other customer. Default 200 (two
   * per-item slices).
   */
  longTaskMs?: number;
  /** How long after its last task ends a customer still counts as active (keeps the last thread kept for it). Default 2,000. */
  activeForMs?: number;
  /** The clock (ms). Default `performance.now`. */
  now?: () => number;
}

/** A task the queue handed out: give it back to `finish` with its thread time. */
export interface Taken<T> {
  entry: T;
  /** Whose task it is. */
  readonly customerId: string;
  /** What the customer was charged when the task started (its expected thread time). */
  readonly chargedMs: number;
}

/** Smoothing of a customer's expected thread time per task (weight of the newest task). */
const newestShare = 0.25;
/** An idle customer's virtual time (and debt) is forgotten after this long. */
const forgetAfterMs = 30_000;
/** Half-life of a task's weight in a customer's held time (`heldMsOf`), ms of wall time. */
const heldHalfLifeMs = 5_000;

/**
 * How long a thread the customer takes is typically held: its recent tasks' thread time, each weighted by that
 * time (Σt²/Σt, older tasks fading with `heldHalfLifeMs` of wall time) — the length of the task a thread-millisecond
 * of the customer's belongs to. A plain average per task let a customer who ran two 5 s tasks and then twelve 15 ms
 * ones look quick (173 ms) and take the last free thread for its next runaway; here it stays ~4.9 s.
 */
const heldMsOf = (account: { heldMs: number; heldSquareMs: number }): number =>
  account.heldMs > 0 ? account.heldSquareMs / account.heldMs : 0;

/**
 * Waiting work in one lane per customer, served by thread time (start-time fair queueing on measured
 * time): every customer has a virtual time that grows by the thread time its tasks held, divided by its
 * weight; the customer with the lowest virtual time among those waiting is served next (ties: the one
 * that has waited longest). A task is charged its customer's expected time when it starts and the
 * difference when it ends, so a customer's long tasks already running count against it. A customer that
 * appears starts at the clock (the virtual time of the last task served): one who was idle neither jumps
 * a queue nor waits behind a backlog the others built up meanwhile. With backlogs on every lane, each
 * customer gets a share of thread time in proportion to its weight, however long its tasks are.
 *
 * The queue also keeps the pool's last free thread for the others: a customer whose tasks run long
 * (`longTaskMs` by `heldMsOf`, or none has ended yet) and who already runs a task does not take it while another customer is active (has
 * work waiting or running, or finished a task within `activeForMs`); so a customer with short work finds
 * a thread without waiting for a long task to end. A customer alone uses every thread.
 */
export class TenantQueue<T> {
  private readonly accounts = new Map<string, Account<T>>();
  private readonly longTaskMs: number;
  private readonly activeForMs: number;
  private readonly now: () => number;
  private clock = 0;
  private waitingCount = 0;
  private runningCount = 0;
  /** When idle customers were last dropped: at most once per `activeForMs`, not on every task's end. */
  private forgotAt = -Infinity;

  constructor(options: TenantQueueOptions = {}) {
    this.longTaskMs = options.longTaskMs ?? 200;
    this.activeForMs = options.activeForMs ?? 2000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Entries waiting. */
  get size(): number {
    return this.waitingCount;
  }

  /** Entries taken and not finished. */
  get running(): number {
    return this.runningCount;
  }

  push(customerId: string, weight: number, entry: T): void {
    let account = this.accounts.get(customerId);
    if (!account) {
      account = {
        entries: [],
        head: 0,
        virtualTime: this.clock,
        weight: 1,
        running: 0,
        expectedMs: 0,
        heldMs: 0,
        heldSquareMs: 0,
        lastEndedAt: -Infinity,
      };
      this.accounts.set(customerId, account);
    } else if (account.head === account.entries.length && account.running === 0) {
      // Back from idle: no credit for the time away.
      account.virtualTime = Math.max(account.virtualTime, this.clock);
    }
    account.weight = weight > 0 ? weight : 1;
    account.entries.push(entry);
    this.waitingCount++;
  }

  /**
   * The next entry to start, given the threads the pool has ready (running ones included), or undefined:
   * none waits, no thread is free, or the last free thread is kept for others. Counts it as running.
   */
  take(threads: number): Taken<T> | undefined {
    const free = threads - this.runningCount;
    if (free <= 0 || this.waitingCount === 0) return undefined;
    const now = this.now();
    const active = free === 1 ? this.countActive(now) : 0;
    let next: [string, Account<T>] | undefined;
    for (const candidate of this.accounts) {
      const account = candidate[1];
      if (account.head === account.entries.length) continue;
      if (next && account.virtualTime >= next[1].virtualTime) continue;
      if (free === 1 && this.keptFrom(account, active)) continue;
      next = candidate;
    }
    if (!next) return undefined;
    const [customerId, account] = next;
    const entry = account.entries[account.head] as T;
    account.entries[account.head] = undefined as T;
    account.head++;
    if (account.head > 1024 && account.head * 2 > account.entries.length) {
      account.entries = account.entries.slice(account.head);
      account.head = 0;
    }
    this.waitingCount--;
    this.runningCount++;
    account.running++;
    this.clock = Math.max(this.clock, account.virtualTime);
    const chargedMs = account.expectedMs;
    account.virtualTime += chargedMs / account.weight;
    // Served customers go to the back of the tie order.
    this.accounts.delete(customerId);
    this.accounts.set(customerId, account);
    return { entry, customerId, chargedMs };
  }

  /** A taken entry has ended after holding its thread `threadMs`: the customer is charged the difference. */
  finish(taken: Taken<T>, threadMs: number): void {
    const account = this.accounts.get(taken.customerId);
    this.runningCount--;
    if (!account) return;
    account.running--;
    const ms = Math.max(0, threadMs);
    account.virtualTime += (ms - taken.chargedMs) / account.weight;
    account.expectedMs = account.lastEndedAt === -Infinity ? ms : account.expectedMs + newestShare * (ms - account.expectedMs);
    const now = this.now();
    const fade = account.lastEndedAt === -Infinity ? 0 : 2 ** (-(now - account.lastEndedAt) / heldHalfLifeMs);
    account.heldMs = account.heldMs * fade + ms;
    account.heldSquareMs = account.heldSquareMs * fade + ms * ms;
    account.lastEndedAt = now;
    if (account.lastEndedAt - this.forgotAt >= this.activeForMs) {
      this.forgotAt = account.lastEndedAt;
      this.forgetIdle(account.lastEndedAt);
    }
  }

  /** Takes out an entry that no longer waits (its job was cancelled). */
  remove(entry: T): boolean {
    for (const account of this.accounts.values()) {
      const index = account.entries.indexOf(entry, account.head);
      if (index === -1) continue;
      account.entries.splice(index, 1);
      this.waitingCount--;
      return true;
    }
    return false;
  }

  /**
   * While entries wait only because the last free thread is kept for others: in how many ms that may
   * change without any task starting or ending (the others stop counting as active). Otherwise undefined.
   */
  keptFor(threads: number): number | undefined {
    if (this.waitingCount === 0 || threads - this.runningCount !== 1) return undefined;
    const now = this.now();
    const active = this.countActive(now);
    let kept: Account<T> | undefined;
    let busy = 0;
    for (const account of this.accounts.values()) {
      if (account.head < account.entries.length || account.running > 0) busy++;
      if (account.head < account.entries.length && this.keptFrom(account, active)) kept = account;
    }
    // A kept customer is running, so it is busy itself: any other busy one ends with a task.
    if (!kept || busy > 1) return undefined;
    let soonest: number | undefined;
    for (const other of this.accounts.values()) {
      if (other === kept) continue;
      const left = other.lastEndedAt + this.activeForMs - now;
      if (left > 0 && (soonest === undefined || left < soonest)) soonest = left;
    }
    return soonest;
  }

  /** Whether the last free thread is kept from this customer (see the class comment). */
  private keptFrom(account: Account<T>, activeCustomers: number): boolean {
    // Not measured yet counts as long: an attacker's first tasks must not take every thread either.
    const measured = account.lastEndedAt !== -Infinity;
    if (account.running === 0 || (measured && heldMsOf(account) <= this.longTaskMs)) return false;
    // It runs a task, so it is active itself: kept when anyone else is.
    return activeCustomers > 1;
  }

  /** Customers with work waiting or running, or a task ended within `activeForMs`: one pass per decision. */
  private countActive(now: number): number {
    let active = 0;
    for (const account of this.accounts.values()) {
      if (account.head < account.entries.length || account.running > 0 || now - account.lastEndedAt < this.activeForMs) active++;
    }
    return active;
  }

  /** Drops customers idle long enough that neither their activity nor their debt matters any more. */
  private forgetIdle(now: number): void {
    for (const [customerId, account] of this.accounts) {
      const idle = account.head === account.entries.length && account.running === 0;
      if (!idle || now - account.lastEndedAt < this.activeForMs) continue;
      if (account.virtualTime <= this.clock || now - account.lastEndedAt >= forgetAfterMs) this.accounts.delete(customerId);
    }
  }
}

interface Account<T> {
  entries: T[];
  head: number;
  virtualTime: number;
  weight: number;
  /** Entries taken and not finished. */
  running: number;
  /** Recent thread time per task, ms (smoothed); 0 until a task has ended. What a task is charged when it starts. */
  expectedMs: number;
  /** Σ of its recent tasks' thread time and of its square, fading with `heldHalfLifeMs` (`heldMsOf`). */
  heldMs: number;
  heldSquareMs: number;
  /** When its last task ended (`now`), -Infinity before any. */
  lastEndedAt: number;
}
