export interface GroupCommitOptions {
  /** Most items per write. Default 500. */
  maxBatch?: number;
  /**
   * Least time between the starts of two writes while busy, in ms. Default 0: a write follows the
   * previous one at once. Worth setting when a write is cheap (no fsync to wait for), so that under load
   * writes still carry many items instead of a few each. It applies only after a write that carried more
   * than one item, or when several are waiting: one caller at a time (a quiet spell, or sequential
   * calls) never waits for it.
   */
  lingerMs?: number;
}

/**
 * Group commit: callers add items and await their own result; when idle the write goes out at once (in
 * the same event-loop turn), and while one is in flight (or, with `lingerMs`, until that much time has
 * passed since the last one began) new items gather for the next. One statement per many items under
 * load, no added latency when quiet.
 */
export class GroupCommit<Item, Result = void> {
  private pending: Array<{ item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }> = [];
  private scheduled = false;
  /** A write is in flight. */
  private writing = false;
  private flushing: Promise<void> = Promise.resolve();
  private lastWriteAt = -Infinity;
  private lastBatchSize = 0;
  private readonly maxBatch: number;
  private readonly lingerMs: number;

  constructor(
    /** Writes a batch; returns one result per item, in order. */
    private readonly write: (items: Item[]) => Promise<Result[] | void>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.lingerMs = options.lingerMs ?? 0;
  }

  add(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Items waiting for a write. */
  get size(): number {
    return this.pending.length;
  }

  /** Resolves when everything added so far is written (or has failed). */
  async drain(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flush(true));
    await this.flushing;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.flushing = this.flushing.then(() => this.flush());
    };
    const decide = () => {
      const busy = this.lastBatchSize > 1 || this.pending.length > 1;
      const wait = busy ? this.lastWriteAt + this.lingerMs - performance.now() : 0;
      if (wait > 0 && this.pending.length < this.maxBatch) setTimeout(run, wait);
      else run();
    };
    // Idle (no write in flight, the last one carried a single item): decide once the current code has run,
    // so items added together in it are seen together, but without waiting for an event-loop turn — a
    // lone caller's write goes out before any other I/O is handled. Busy: one turn first, so concurrent
    // callers of that turn join; items that arrive while a write is in flight go with the next one anyway.
    if (!this.writing && this.lastBatchSize <= 1) queueMicrotask(decide);
    else setImmediate(decide);
  }

  /** Writes what is pending: everything when draining, else full batches and then one more. */
  private async flush(everything = false): Promise<void> {
    do {
      const batch = this.pending.splice(0, this.maxBatch);
      if (batch.length === 0) return;
      this.lastWriteAt = performance.now();
      this.lastBatchSize = batch.length;
      this.writing = true;
      try {
        const results = await this.write(batch.map((entry) => entry.item));
        batch.forEach((entry, index) => entry.resolve((results ? results[index] : undefined) as Result));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      } finally {
        this.writing = false;
      }
    } while (everything || this.lingerMs === 0 || this.pending.length >= this.maxBatch);
    // Items that arrived during the write wait out the linger.
    if (this.pending.length > 0) this.schedule();
  }
}
