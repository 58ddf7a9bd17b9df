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
    const { group, writes } = recordingGroup({ lingerMs: 200 });

    const started = performance.now();
    await group.add(0);
    expect(performance.now() - started).toBeLessThan(150);

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
    const { group, writes } = recordingGroup({ lingerMs: 200 });
    const started = performance.now();
    for (let i = 0; i < 5; i++) await group.add(i);
    expect(performance.now() - started).toBeLessThan(150);
    expect(writes).toEqual([[0], [1], [2], [3], [4]]);
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
