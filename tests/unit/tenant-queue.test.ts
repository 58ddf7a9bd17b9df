import { describe, expect, it } from 'vitest';
import { TenantQueue, type Taken } from '../../workers/tenant-queue.js';

/** A queue on a clock the test moves. */
function clocked(options: { longTaskMs?: number; activeForMs?: number } = {}) {
  let now = 0;
  const queue = new TenantQueue<string>({ ...options, now: () => now });
  return {
    queue,
    advance: (ms: number) => (now += ms),
  };
}

/** Who an entry belongs to: its label up to the first digit ("a1" → "a", "long3" → "long"). */
const ownerOf = (entry: string) => entry.replace(/\d.*$/, '');

/**
 * Runs the queue on `threads` threads until `untilMs` on the queue's clock: whenever a thread is free it
 * takes the next entry, which holds its thread for `durationOf(entry)` ms. `refill` pushes a customer's
 * next entry when one of its entries starts (a backlog that never runs dry). Returns the thread time each
 * customer got and the order entries started in.
 */
function simulate(
  queue: TenantQueue<string>,
  advance: (ms: number) => number,
  threads: number,
  durationOf: (entry: string) => number,
  untilMs: number,
  refill: (entry: string) => void = () => undefined,
) {
  let now = 0;
  const running: Array<{ taken: Taken<string>; endsAt: number }> = [];
  const threadMs = new Map<string, number>();
  const started: string[] = [];
  while (now < untilMs) {
    for (let taken = queue.take(threads); taken; taken = queue.take(threads)) {
      started.push(taken.entry);
      running.push({ taken, endsAt: now + durationOf(taken.entry) });
      refill(taken.entry);
    }
    running.sort((a, b) => a.endsAt - b.endsAt);
    const first = running.shift();
    if (!first) break;
    advance(first.endsAt - now);
    now = first.endsAt;
    const held = durationOf(first.taken.entry);
    threadMs.set(first.taken.customerId, (threadMs.get(first.taken.customerId) ?? 0) + held);
    queue.finish(first.taken, held);
  }
  return { threadMs, started };
}

describe('the per-customer queue', () => {
  it('serves customers by thread time: 1 ms tasks are not starved by 100 ms tasks, and the thread time is shared about equally', () => {
    const { queue, advance } = clocked();
    let serial = 0;
    const refill = (entry: string) => queue.push(ownerOf(entry), 1, `${ownerOf(entry)}${++serial}`);
    queue.push('long', 1, 'long0');
    queue.push('short', 1, 'short0');
    const { threadMs, started } = simulate(queue, advance, 1, (entry) => (entry.startsWith('long') ? 100 : 1), 10_000, refill);
    const long = threadMs.get('long') ?? 0;
    const short = threadMs.get('short') ?? 0;
    expect(long / (long + short)).toBeGreaterThan(0.45);
    expect(long / (long + short)).toBeLessThan(0.55);
    // Counted in tasks, the short customer runs about 100 for each long one (round robin by tasks: 1).
    const counts = started.reduce((n, entry) => ((n[ownerOf(entry)] = (n[ownerOf(entry)] ?? 0) + 1), n), {} as Record<string, number>);
    expect((counts.short ?? 0) / (counts.long ?? 1)).toBeGreaterThan(80);
  });

  it('shares thread time in proportion to weights', () => {
    const { queue, advance } = clocked();
    let serial = 0;
    const weights: Record<string, number> = { enterprise: 4, starter: 1 };
    const refill = (entry: string) => queue.push(ownerOf(entry), weights[ownerOf(entry)] ?? 1, `${ownerOf(entry)}${++serial}`);
    queue.push('enterprise', 4, 'enterprise0');
    queue.push('starter', 1, 'starter0');
    // The starter's tasks are the long ones: weights count thread time, not tasks.
    const { threadMs } = simulate(queue, advance, 2, (entry) => (entry.startsWith('starter') ? 50 : 10), 20_000, refill);
    const share = (threadMs.get('enterprise') ?? 0) / ((threadMs.get('enterprise') ?? 0) + (threadMs.get('starter') ?? 0));
    expect(share).toBeGreaterThan(0.75);
    expect(share).toBeLessThan(0.85);
  });

  it('serves a customer arriving later before the backlog others built up, and gives an idle one no credit', () => {
    const { queue, advance } = clocked();
    for (let n = 1; n <= 4; n++) queue.push('a', 1, `a${n}`);
    for (let n = 1; n <= 2; n++) queue.push('b', 1, `b${n}`);
    // One thread: a1 and b1 first (arrival order), then by thread time used.
    const a1 = queue.take(1)!;
    advance(10);
    queue.finish(a1, 10);
    const b1 = queue.take(1)!;
    advance(30);
    queue.finish(b1, 30);
    expect([a1.entry, b1.entry]).toEqual(['a1', 'b1']);
    // a has used 10 ms, b 30 ms: a goes on until it has used more than b.
    const next = queue.take(1)!;
    expect(next.entry).toBe('a2');
    advance(10);
    queue.finish(next, 10);
    const a3 = queue.take(1)!;
    expect(a3.entry).toBe('a3');
    // A newcomer waits for no backlog: it is next as soon as a thread is free.
    queue.push('c', 1, 'c1');
    queue.finish(a3, 10);
    expect(queue.take(1)?.entry).toBe('c1');
    expect(queue.remove('b2')).toBe(true);
    expect(queue.remove('b2')).toBe(false);
    expect(queue.size).toBe(1);
  });

  it('takes nothing while every thread runs', () => {
    const { queue } = clocked();
    queue.push('a', 1, 'a1');
    queue.push('a', 1, 'a2');
    expect(queue.take(1)?.entry).toBe('a1');
    expect(queue.take(1)).toBeUndefined();
    expect(queue.running).toBe(1);
    expect(queue.size).toBe(1);
  });

  it('charges a task when it starts, so a customer whose tasks run goes behind one whose tasks wait', () => {
    const { queue, advance } = clocked();
    for (const [customerId, ms] of [
      ['a', 2000],
      ['b', 1500],
    ] as const) {
      queue.push(customerId, 1, `${customerId}0`);
      const taken = queue.take(1)!;
      advance(ms);
      queue.finish(taken, ms);
    }
    queue.push('b', 1, 'b1');
    queue.push('b', 1, 'b2');
    queue.push('a', 1, 'a1');
    // b has used 1.5 s, a 2 s: b1 first, and while it runs it counts as b's 3 s, so a1 goes before b2.
    expect([queue.take(4)?.entry, queue.take(4)?.entry, queue.take(4)?.entry]).toEqual(['b1', 'a1', 'b2']);
  });
});

describe('the last free thread', () => {
  /** A customer known to run `ms`-long tasks (one finished). */
  function known(queue: TenantQueue<string>, advance: (ms: number) => number, customerId: string, ms: number) {
    queue.push(customerId, 1, `${customerId}0`);
    const taken = queue.take(Infinity)!;
    advance(ms);
    queue.finish(taken, ms);
  }

  it('is kept from a customer with long tasks while another customer is active, so the other finds it free', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'attacker', 2000);
    known(queue, advance, 'victim', 2);
    for (let n = 1; n <= 10; n++) queue.push('attacker', 1, `attacker${n}`);
    expect(queue.take(4)?.entry).toBe('attacker1');
    expect(queue.take(4)?.entry).toBe('attacker2');
    expect(queue.take(4)?.entry).toBe('attacker3');
    // Three of four threads run the attacker's tasks; the victim finished a task 0 ms ago.
    expect(queue.take(4)).toBeUndefined();
    expect(queue.keptFor(4)).toBe(2000);
    advance(500);
    queue.push('victim', 1, 'victim1');
    expect(queue.take(4)?.entry).toBe('victim1');
    expect(queue.take(4)).toBeUndefined();
  });

  it('is kept from a customer whose quick tasks between runaways bring its average per task under the bar', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'attacker', 5000);
    known(queue, advance, 'attacker', 5000);
    // Twelve 15 ms tasks: a plain average per task (newest a quarter) comes down to 173 ms, and the attacker's next
    // runaway took the last free thread; weighted by thread time, its tasks still hold a thread ~4.9 s.
    for (let n = 0; n < 12; n++) known(queue, advance, 'attacker', 15);
    known(queue, advance, 'victim', 2);
    queue.push('attacker', 1, 'attacker1');
    queue.push('attacker', 1, 'attacker2');
    expect(queue.take(2)?.entry).toBe('attacker1');
    expect(queue.take(2)).toBeUndefined();
    queue.push('victim', 1, 'victim1');
    expect(queue.take(2)?.entry).toBe('victim1');
  });

  it('forgets a long task with time: a customer whose tasks are quick for a minute since takes the last thread again', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'mixed', 5000);
    for (let n = 0; n < 60; n++) {
      advance(1000);
      known(queue, advance, 'mixed', 15);
    }
    known(queue, advance, 'victim', 2);
    queue.push('mixed', 1, 'mixed1');
    queue.push('mixed', 1, 'mixed2');
    expect(queue.take(2)?.entry).toBe('mixed1');
    expect(queue.take(2)?.entry).toBe('mixed2');
  });

  it('goes to a customer with long tasks once the others have been idle for `activeForMs`', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'attacker', 2000);
    known(queue, advance, 'victim', 2);
    queue.push('attacker', 1, 'attacker1');
    queue.push('attacker', 1, 'attacker2');
    expect(queue.take(2)?.entry).toBe('attacker1');
    expect(queue.take(2)).toBeUndefined();
    advance(1999);
    expect(queue.take(2)).toBeUndefined();
    expect(queue.keptFor(2)).toBe(1);
    advance(1);
    expect(queue.take(2)?.entry).toBe('attacker2');
  });

  it('goes to a customer alone, and to one whose tasks are short, whoever else is active', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'alone', 2000);
    queue.push('alone', 1, 'alone1');
    queue.push('alone', 1, 'alone2');
    expect(queue.take(2)?.entry).toBe('alone1');
    expect(queue.take(2)?.entry).toBe('alone2');

    const other = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(other.queue, other.advance, 'slices', 100);
    known(other.queue, other.advance, 'victim', 2);
    other.queue.push('slices', 1, 'slices1');
    other.queue.push('slices', 1, 'slices2');
    expect(other.queue.take(2)?.entry).toBe('slices1');
    expect(other.queue.take(2)?.entry).toBe('slices2');
    expect(other.queue.keptFor(2)).toBeUndefined();
  });

  it('is kept from a customer none of whose tasks has ended yet, while another is active', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'victim', 2);
    queue.push('newcomer', 1, 'newcomer1');
    queue.push('newcomer', 1, 'newcomer2');
    expect(queue.take(2)?.entry).toBe('newcomer1');
    expect(queue.take(2)).toBeUndefined();
  });

  it('goes to a customer with long tasks that runs none yet (with one thread nothing is kept)', () => {
    const { queue, advance } = clocked({ longTaskMs: 200, activeForMs: 2000 });
    known(queue, advance, 'attacker', 2000);
    known(queue, advance, 'victim', 2);
    queue.push('attacker', 1, 'attacker1');
    expect(queue.take(1)?.entry).toBe('attacker1');
  });
});
