import { describe, expect, it } from 'vitest';
import { numberOption } from '../../ops/bench/harness.js';

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
