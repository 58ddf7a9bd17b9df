/**
 * The BullMQ adds of accepted jobs that a submit answered 202 without waiting for. The job's row is
 * committed to disk before the 202 (PostgreSQL is the record, SPEC §8), so the add's round trip need not
 * hold the answer: if this process dies first, the sweeper enqueues the row once its grace has passed.
 *
 * In this process, a cancel waits for its job's pending add (`settled`) before it removes the BullMQ job,
 * and shutdown waits for them all (`drain`). At most `maxPending` are held: past that a submit waits for its
 * own add again, so a flood of submits cannot pile adds up in memory while Redis is slow.
 */
export class PendingEnqueues {
  private readonly pending = new Map<string, Promise<void>>();

  constructor(private readonly maxPending = 1000) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Holds job `id`'s add (`enqueue` logs its own failures; a rejection here only ends the hold); false when too many
   * are pending: the caller awaits the add itself.
   */
  hold(id: string, adding: Promise<unknown>): boolean {
    if (this.pending.size >= this.maxPending) return false;
    const settled: Promise<void> = adding.then(
      () => this.release(id, settled),
      () => this.release(id, settled),
    );
    this.pending.set(id, settled);
    return true;
  }

  /** Resolves once job `id`'s add, if this process holds one, has settled. */
  settled(id: string): Promise<void> {
    return this.pending.get(id) ?? Promise.resolve();
  }

  /** Resolves once every add held now has settled. */
  async drain(): Promise<void> {
    await Promise.all(this.pending.values());
  }

  private release(id: string, settled: Promise<void>): void {
    if (this.pending.get(id) === settled) this.pending.delete(id);
  }
}
