import { describe, expect, it } from 'vitest';
import { fairChargeMs } from '../../workers/fair-charge.js';

describe('the worker time fair sharing charges for a finished job', () => {
  it("is the pool's task time when the job ran on a Piscina thread", () => {
    expect(fairChargeMs({ workMs: 4.5, durationMs: 20 })).toBe(4.5);
  });

  it('is the wall time when it did not (workMs 0), so such a customer is still charged', () => {
    expect(fairChargeMs({ workMs: 0, durationMs: 20 })).toBe(20);
  });
});
