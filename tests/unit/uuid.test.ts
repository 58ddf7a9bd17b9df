import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../lib/uuid.js';

const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the process UUIDv7 generator (job ids, keys, ledger rows)', () => {
  it('makes version-7, variant-1 ids that increase strictly, across refills of its random words', () => {
    // 1,024 words are drawn at a time and each id takes one or two: 5,000 ids refill several times.
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    for (const id of ids) expect(id).toMatch(v7);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('carries the current time in its first 48 bits', () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after + 1);
  });

  it('fills its random bits afresh: no two ids share their 48-bit random tail', () => {
    const tails = new Set(Array.from({ length: 200 }, () => uuidv7().slice(24)));
    expect(tails.size).toBe(200);
  });
});
