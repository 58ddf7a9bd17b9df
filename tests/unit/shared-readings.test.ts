import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sharedReadings } from '../../api/shared-readings.js';

describe('sharedReadings', () => {
  it('reads once for concurrent calls and for calls within the reuse window, per key, and again after it', async () => {
    const reads: string[] = [];
    const read = sharedReadings(async (key) => {
      reads.push(key);
      await sleep(20);
      return { key, reading: reads.length };
    }, 150);

    const together = await Promise.all([read('a'), read('a'), read('a'), read('b')]);
    expect(together.map((answer) => answer.key)).toEqual(['a', 'a', 'a', 'b']);
    expect(reads.sort()).toEqual(['a', 'b']);
    expect((await read('a')).reading).toBe(together[0]!.reading);

    await sleep(200);
    const later = await read('a');
    expect(later.reading).toBe(3);
    expect(reads).toHaveLength(3);
  });

  it('does not keep a failed reading: the next call reads again', async () => {
    let calls = 0;
    const read = sharedReadings(async () => {
      calls++;
      if (calls === 1) throw new Error('database unreachable');
      return { calls };
    }, 10_000);
    await expect(read('a')).rejects.toThrow('database unreachable');
    expect(await read('a')).toEqual({ calls: 2 });
  });
});
