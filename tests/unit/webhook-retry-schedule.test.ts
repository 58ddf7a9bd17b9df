import { describe, expect, it } from 'vitest';
import { webhookAttempts, webhookRetryCapMs, webhookRetryDelayMs } from '../../queue/webhook-queue.js';

const productionBaseMs = 30_000;
const retries = Array.from({ length: webhookAttempts - 1 }, (_, i) => i + 1);
const total = (random: () => number) => retries.reduce((sum, retry) => sum + webhookRetryDelayMs(retry, productionBaseMs, random), 0);

describe('webhook retry schedule', () => {
  it('doubles from the base and stops growing at the 6 h cap', () => {
    const nominal = retries.map((retry) => webhookRetryDelayMs(retry, productionBaseMs, () => 0));
    expect(nominal.slice(0, 4)).toEqual([30_000, 60_000, 120_000, 240_000]);
    expect(nominal.slice(-4)).toEqual([webhookRetryCapMs, webhookRetryCapMs, webhookRetryCapMs, webhookRetryCapMs]);
  });

  it('keeps retrying for at least 24 hours even with the least jitter (32.5 h), and at most 39 h with the most', () => {
    expect(total(() => 0)).toBe(117_090_000);
    expect(total(() => 0)).toBeGreaterThanOrEqual(24 * 3600 * 1000);
    expect(total(() => 0.999_999)).toBeLessThanOrEqual(39.1 * 3600 * 1000);
  });

  it('only ever lengthens a wait with jitter, by at most 20 %', () => {
    for (const random of [0, 0.25, 0.5, 0.999]) {
      const delay = webhookRetryDelayMs(3, productionBaseMs, () => random);
      expect(delay).toBeGreaterThanOrEqual(120_000);
      expect(delay).toBeLessThanOrEqual(144_000);
    }
  });
});
