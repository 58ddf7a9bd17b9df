/**
 * Customers whose last single submit to a shard was held there (their lane had jobs, or the window or their cap
 * was full), as this process saw it. `submitJob` does not ask such a shard to release the next one while its row
 * is being inserted (`probeAdmission`): the probe would be refused and the job admitted a second time once its row
 * is stored — under a flood, twice the script calls and twice Redis's CPU per submit. A submit of theirs released
 * at once there clears the entry. A hint only: a stale entry costs one submit the round trip the probe saves.
 */
export class HeldLately {
  private readonly held = new Set<string>();

  constructor(
    /** Most entries kept (the oldest dropped first). */
    private readonly maxEntries = 10_000,
  ) {}

  has(queueKey: string, customerId: string): boolean {
    return this.held.has(`${queueKey} ${customerId}`);
  }

  note(queueKey: string, customerId: string, held: boolean): void {
    const key = `${queueKey} ${customerId}`;
    if (!held) {
      this.held.delete(key);
      return;
    }
    if (this.held.has(key)) return;
    if (this.held.size >= this.maxEntries) this.held.delete(this.held.values().next().value as string);
    this.held.add(key);
  }
}
