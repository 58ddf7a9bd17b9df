import { describe, expect, it } from 'vitest';
import { numberOption, waitForCount } from '../../ops/bench/harness.js';

describe('the bench’s numeric options', () => {
  it('reads --name=N, and falls back when the option is absent', () => {
    expect(numberOption(['--only=fairness', '--fair-rounds=5'], 'fair-rounds', 3, 1)).toBe(5);
    expect(numberOption(['--only=fairness'], 'fair-rounds', 3, 1)).toBe(3);
    expect(numberOption(['--fair-workers=2', '--fair-rounds=4'], 'fair-workers', 1, 1)).toBe(2);
  });

  it.each(['abc', '', '2.5', '0', '-1', ' '])('stops the run on --fair-rounds=%j, naming the option', (value) => {
    expect(() => numberOption([`--fair-rounds=${value}`], 'fair-rounds', 3, 1)).toThrow(
      `--fair-rounds=${value}: expected an integer of at least 1`,
    );
  });
});

describe('the bench’s wait for a count (waitForCount)', () => {
  /** A count that grows by `step` each `msPerStep`, from when it was made; it records when it was read. */
  const growingCount = (step: number, msPerStep: number) => {
    const started = performance.now();
    const reads: number[] = [];
    return {
      reads,
      count: async () => {
        reads.push(performance.now() - started);
        return Math.floor((performance.now() - started) / msPerStep) * step;
      },
    };
  };

  it('resolves soon after the count reaches n, reading it far less often than every 100 ms while the end is far', async () => {
    // 1,000 a 10 ms: 50,000 after 500 ms.
    const { count, reads } = growingCount(1000, 10);
    const started = performance.now();
    await waitForCount(count, 50_000, 5000);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(500);
    // Generous, for a loaded machine's late timers: it bounds the overshoot; the reads below show the rate is used.
    expect(took).toBeLessThan(2000);
    // A read every 20 ms from the start would be 25; the rate lets it wait half of what is left.
    expect(reads.length).toBeLessThan(15);
  });

  it('gives up after its timeout, saying how far the count got', async () => {
    await expect(waitForCount(async () => 3, 10, 100)).rejects.toThrow('timed out after 100 ms (3 of 10)');
  });
});
