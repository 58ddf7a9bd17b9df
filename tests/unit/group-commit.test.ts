import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../db/group-commit.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A GroupCommit whose writes only record their items. */
function recordingGroup(options: ConstructorParameters<typeof GroupCommit>[1]) {
  const writes: number[][] = [];
  const group = new GroupCommit<number>(async (items) => {
    writes.push(items);
  }, options);
  return { group, writes };
}

describe('GroupCommit', () => {
  it('writes the first item after a quiet spell at once, and gathers the items of a busy spell into few writes', async () => {
    // A linger far longer than a lone write on a loaded machine: waiting it out would be unmistakable.
    const { group, writes } = recordingGroup({ lingerMs: 2000 });

    const started = performance.now();
    await group.add(0);
    expect(performance.now() - started).toBeLessThan(1000);

    // Ten callers at once, then ten more every 5 ms: a busy spell, so all twenty wait out the linger and go together.
    const busy = [
      ...Array.from({ length: 10 }, (_, i) => group.add(i + 1)),
      ...Array.from({ length: 10 }, (_, i) => sleep(5 + i * 5).then(() => group.add(i + 11))),
    ];
    await Promise.all(busy);
    expect(writes.flat()).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(writes.length).toBe(2);
  });

  it('never makes one caller at a time wait for the linger', async () => {
    const { group, writes } = recordingGroup({ lingerMs: 2000 });
    const started = performance.now();
    for (let i = 0; i < 5; i++) await group.add(i);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(writes).toEqual([[0], [1], [2], [3], [4]]);
  });

  it('writes a lone item before the event loop handles anything else, not a turn later', async () => {
    const { group, writes } = recordingGroup({ lingerMs: 200 });
    // Queued before the add: a write that waited for an event-loop turn would start after it ran.
    let turnPassed = false;
    setImmediate(() => {
      turnPassed = true;
    });
    let writtenBeforeTheTurn: boolean | null = null;
    const written = group.add(1).then(() => (writtenBeforeTheTurn ??= !turnPassed));
    await written;
    expect(writes).toEqual([[1]]);
    expect(writtenBeforeTheTurn).toBe(true);
  });

  it('still gathers the items added while a write is in flight into one write', async () => {
    let release: () => void = () => undefined;
    const writes: number[][] = [];
    const group = new GroupCommit<number>(async (items) => {
      writes.push(items);
      if (items[0] === 0) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = group.add(0);
    await new Promise((resolve) => setImmediate(resolve));
    // Twenty callers, each in an event-loop turn of its own, while the first write is held.
    const later: Promise<void>[] = [];
    for (let i = 1; i <= 20; i++) {
      later.push(group.add(i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    release();
    await Promise.all([first, ...later]);
    expect(writes).toEqual([[0], Array.from({ length: 20 }, (_, i) => i + 1)]);
  });

  it('without a linger writes again as soon as the previous write returns', async () => {
    const writes: number[][] = [];
    const group = new GroupCommit<number>(async (items) => {
      writes.push(items);
      await sleep(20);
    });
    await Promise.all([group.add(1), sleep(5).then(() => group.add(2)), sleep(10).then(() => group.add(3))]);
    expect(writes).toEqual([[1], [2, 3]]);
  });

  it('never puts more than maxBatch items in one write, and drain writes everything', async () => {
    const { group, writes } = recordingGroup({ maxBatch: 3, lingerMs: 1000 });
    const all = Array.from({ length: 7 }, (_, i) => group.add(i));
    await group.drain();
    await Promise.all(all);
    expect(writes.every((batch) => batch.length <= 3)).toBe(true);
    expect(writes.flat()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('rejects the items of a failed write and goes on with the next', async () => {
    let fail = true;
    const group = new GroupCommit<number>(async () => {
      if (fail) throw new Error('database unavailable');
    });
    await expect(group.add(1)).rejects.toThrow('database unavailable');
    fail = false;
    await expect(group.add(2)).resolves.toBeUndefined();
  });
});
