/**
 * Waiting work in one lane per customer, served round robin weighted by each lane's weight (start-time
 * fair queueing): every lane has a virtual time that grows by 1/weight per entry served; the lane with the
 * lowest is served next (ties: the lane that has waited longest). A lane that appears starts at the clock
 * (the virtual time of the last entry served), so a customer who was idle neither jumps the queue nor
 * waits behind a backlog others built up meanwhile: it is served after at most one entry of each other
 * lane. With equal weights that is plain round robin.
 */
export class TenantQueue<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  private clock = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(customerId: string, weight: number, entry: T): void {
    let lane = this.lanes.get(customerId);
    if (!lane) {
      lane = { entries: [], head: 0, virtualTime: this.clock, weight: weight > 0 ? weight : 1 };
      this.lanes.set(customerId, lane);
    }
    lane.entries.push(entry);
    this.count++;
  }

  /** The next entry, or undefined when none waits. */
  shift(): T | undefined {
    let next: [string, Lane<T>] | undefined;
    for (const candidate of this.lanes) {
      if (!next || candidate[1].virtualTime < next[1].virtualTime) next = candidate;
    }
    if (!next) return undefined;
    const [customerId, lane] = next;
    const entry = lane.entries[lane.head] as T;
    lane.entries[lane.head] = undefined as T;
    lane.head++;
    this.count--;
    this.clock = lane.virtualTime;
    lane.virtualTime += 1 / lane.weight;
    if (lane.head === lane.entries.length) this.lanes.delete(customerId);
    else {
      if (lane.head > 1024 && lane.head * 2 > lane.entries.length) {
        lane.entries = lane.entries.slice(lane.head);
        lane.head = 0;
      }
      // Served lanes go to the back of the tie order.
      this.lanes.delete(customerId);
      this.lanes.set(customerId, lane);
    }
    return entry;
  }

  /** Takes out an entry that no longer waits (its job was cancelled). */
  remove(entry: T): boolean {
    for (const [customerId, lane] of this.lanes) {
      const index = lane.entries.indexOf(entry, lane.head);
      if (index === -1) continue;
      lane.entries.splice(index, 1);
      this.count--;
      if (lane.head === lane.entries.length) this.lanes.delete(customerId);
      return true;
    }
    return false;
  }
}

interface Lane<T> {
  entries: T[];
  head: number;
  virtualTime: number;
  weight: number;
}
