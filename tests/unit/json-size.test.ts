import { describe, expect, it } from 'vitest';
import { fitsJsonBytes, jsonBytes, oversizedJsonBytes } from '../../jobs/result-limit.js';

const limit = 8 * 1024;
const exactFits = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '') <= limit;

describe('the size of a value as JSON', () => {
  it('tells whether a value fits the limit as encoding it would, at and around the limit', () => {
    const values: unknown[] = [
      null,
      42,
      'short',
      { substrate_id: '0x0123456789abcdef', parameters: { x: 1, y: 2 } },
      'a'.repeat(limit - 2), // exactly the limit with its quotes
      'a'.repeat(limit - 1), // one byte over
      '€'.repeat(2730), // 8,192 bytes of UTF-8 from 2,730 characters: fits
      '€'.repeat(2731), // over in bytes while its characters are well under
      { s: '\u0001'.repeat(2000) }, // escapes: 6 characters each in JSON
      Array.from({ length: 2000 }, (_, i) => i), // numbers: more characters than values
      Array.from({ length: 4000 }, () => 1),
      { a: undefined, b: 'x'.repeat(limit - 10) }, // a key JSON leaves out
      { invocations: Array.from({ length: 10_000 }, (_, i) => ({ substrate_id: `0x${i}`, parameters: { x: i } })) },
      // Values JSON encodes otherwise than their fields: each must be judged as encoded.
      Buffer.alloc(2000),
      { toJSON: () => 1, big: 'x'.repeat(9000) },
      Object.create({ inherited: 'x'.repeat(9000) }) as object,
      Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`key${i}`, Symbol(String(i))])),
      [undefined, () => 1, Symbol('s')],
    ];
    for (const value of values) expect(fitsJsonBytes(value, limit), JSON.stringify(value)?.slice(0, 60)).toBe(exactFits(value));
  });

  it('gives the exact size of a value over the limit, and of any value stored', () => {
    const big = { s: '€'.repeat(5000) };
    const exact = Buffer.byteLength(JSON.stringify(big));
    expect(oversizedJsonBytes(big, limit)).toBe(exact);
    expect(oversizedJsonBytes({ s: 'small' }, limit)).toBeNull();
    expect(jsonBytes(big)).toBe(exact);
    expect(jsonBytes(12345)).toBe(5);
    expect(jsonBytes(undefined)).toBe(0);
  });
});
