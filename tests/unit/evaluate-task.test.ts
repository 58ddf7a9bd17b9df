import { describe, expect, it } from 'vitest';
import analyze from '../../jobs/divide/analyze.task.js';
import evaluate, { evaluateMany } from '../../jobs/invoke/evaluate.task.js';
import { checkExpression, createCelEnvironment } from '../../jobs/invoke/cel-environment.js';

describe('evaluate task', () => {
  it('multiplies parameters', () => {
    expect(evaluate({ expression: 'x * y', parameters: { x: 5, y: 7 } })).toEqual({ value: 35 });
  });

  it('mixes JSON numbers with integer literals', () => {
    expect(evaluate({ expression: 'x + 1', parameters: { x: 5 } })).toEqual({ value: 6 });
    expect(evaluate({ expression: 'x / 2', parameters: { x: 7 } })).toEqual({ value: 3.5 });
  });

  it('takes % of JSON numbers (doubles) and of doubles with ints, the sign of the dividend, as ints do', () => {
    expect(evaluate({ expression: 'x % y', parameters: { x: 7, y: 3 } })).toEqual({ value: 1 });
    expect(evaluate({ expression: 'x % y', parameters: { x: -7, y: 3 } })).toEqual({ value: -1 });
    expect(evaluate({ expression: 'x % y', parameters: { x: 7, y: -3 } })).toEqual({ value: 1 });
    expect(evaluate({ expression: 'x % y', parameters: { x: 7.5, y: 2 } })).toEqual({ value: 1.5 });
    expect(evaluate({ expression: 'x % 2 == 0', parameters: { x: 10 } })).toEqual({ value: true });
    expect(evaluate({ expression: '10 % x', parameters: { x: 4 } })).toEqual({ value: 2 });
    expect(evaluate({ expression: '-7 % 3', parameters: {} })).toEqual({ value: -1 }); // CEL's own int % int, for comparison
  });

  it('fails % by zero with a clear error, as integer modulus by zero does, never answering NaN', () => {
    expect(() => evaluate({ expression: '7 % 0', parameters: {} })).toThrow(/modulo by zero/);
    expect(() => evaluate({ expression: 'x % y', parameters: { x: 7, y: 0 } })).toThrow(/modulo by zero/);
    expect(() => evaluate({ expression: 'x % y', parameters: { x: 7, y: -0 } })).toThrow(/modulo by zero/);
    expect(() => evaluate({ expression: 'x % 0', parameters: { x: 7 } })).toThrow(/modulo by zero/);
    expect(() => evaluate({ expression: '7 % x', parameters: { x: 0 } })).toThrow(/modulo by zero/);
  });

  it('turns integer results into JSON numbers and huge ones into strings', () => {
    expect(evaluate({ expression: '2 + 3', parameters: {} })).toEqual({ value: 5 });
    expect(evaluate({ expression: '9223372036854775807', parameters: {} })).toEqual({ value: '9223372036854775807' });
  });

  it('refuses an int64 overflow as an error, as CEL does, instead of answering a value no int64 holds', () => {
    expect(() => evaluate({ expression: '-9223372036854775808 / -1', parameters: {} })).toThrow(/integer overflow/);
    expect(() => evaluate({ expression: '-(-9223372036854775807 - 1)', parameters: {} })).toThrow(/integer overflow/);
    expect(() => evaluate({ expression: '[1, -9223372036854775808 / -1]', parameters: {} })).toThrow(/integer overflow/);
    expect(() => evaluate({ expression: '{"key": -9223372036854775808 / -1}', parameters: {} })).toThrow(/integer overflow/);
    expect(() => evaluate({ expression: '9223372036854775807 + 1', parameters: {} })).toThrow(/integer overflow/);
    expect(evaluate({ expression: '-9223372036854775807 - 1', parameters: {} })).toEqual({ value: '-9223372036854775808' });
  });

  it('refuses non-finite results', () => {
    expect(() => evaluate({ expression: 'x / 0.0', parameters: { x: 1 } })).toThrow(/finite/);
  });

  it('refuses a result PostgreSQL cannot store (NUL in text or in a key), and keeps ordinary text', () => {
    expect(() => evaluate({ expression: '"a\\x00b"', parameters: {} })).toThrow(/result text contains U\+0000/);
    expect(() => evaluate({ expression: '{"k\\u0000": 1}', parameters: {} })).toThrow(/result key contains U\+0000/);
    expect(() => evaluate({ expression: '[s + "\\x00"]', parameters: { s: 'x' } })).toThrow(/NUL/);
    expect(evaluate({ expression: '"a" + s', parameters: { s: 'é😀' } })).toEqual({ value: 'aé😀' });
  });

  it("answers uint, timestamp, duration and type results in CEL's JSON form, not as empty objects", () => {
    expect(evaluate({ expression: 'uint(x) + 1u', parameters: { x: 41 } })).toEqual({ value: 42 });
    expect(evaluate({ expression: '[uint(x), 18446744073709551615u]', parameters: { x: 1 } })).toEqual({
      value: [1, '18446744073709551615'],
    });
    expect(evaluate({ expression: 'timestamp("2020-01-01T00:00:00Z")', parameters: {} })).toEqual({ value: '2020-01-01T00:00:00.000Z' });
    expect(evaluate({ expression: '{"wait": duration("90s")}', parameters: {} })).toEqual({ value: { wait: '90s' } });
    expect(evaluate({ expression: 'type(x)', parameters: { x: 1 } })).toEqual({ value: 'double' });
    // cel-js's own text of these was "-10.5s", "00.5s" and "-2.5s".
    expect(
      evaluate({
        expression: '[duration("-1.5s"), duration("-0.5s"), duration("1.5s") - duration("3s"), duration("1.000000001s")]',
        parameters: {},
      }),
    ).toEqual({
      value: ['-1.5s', '-0.5s', '-1.5s', '1.000000001s'],
    });
    expect(() => evaluate({ expression: 'timestamp("9999-12-31T23:59:59Z") + duration("87600h")', parameters: {} })).toThrow(
      /outside years 0001–9999/,
    );
  });

  describe('values that grow while an expression runs', () => {
    const sixteen = Array.from({ length: 16 }, () => 'a').join(' + ');
    /** `seed` concatenated with itself 16 times, `rounds` times over: 16^rounds copies. */
    const grown = (seed: string, rounds: number) => `[${seed}]${`.map(a, ${sixteen})`.repeat(rounds)}[0]`;

    it('refuses a string, list or bytes value past its limit with a clear error, before making it', () => {
      // 10 × 16⁶ = 167,772,160 characters: made flat on a thread, that string took the whole worker process down.
      expect(() => evaluate({ expression: grown('s', 6), parameters: { s: 'abcdefghij' } })).toThrow(
        /a concatenation would hold \d+ characters, over the limit of 4194304 for one value/,
      );
      expect(() => evaluate({ expression: `${grown('s', 6)}.contains("z")`, parameters: { s: 'abcdefghij' } })).toThrow(/concatenation/);
      expect(() => evaluate({ expression: grown('l', 6), parameters: { l: Array.from({ length: 10 }, (_, i) => i) } })).toThrow(
        /would hold \d+ items, over the limit of 1048576/,
      );
      expect(() => evaluate({ expression: grown('b"abcdefghij"', 6), parameters: {} })).toThrow(
        /would hold \d+ bytes, over the limit of 4194304/,
      );
    });

    it('refuses a join that would make a string past the limit, separators counted', () => {
      // 10 × 16⁴ = 655,360 characters each: seven of them are 4,587,520.
      expect(() =>
        evaluate({ expression: `[${grown('s', 4)}].map(a, [a, a, a, a, a, a, a].join())[0]`, parameters: { s: 'abcdefghij' } }),
      ).toThrow(/a join would hold 4587520 characters/);
      expect(() =>
        evaluate({ expression: `[${grown('s', 4)}].map(a, [a, a, a, a].join(a + a))[0]`, parameters: { s: 'abcdefghij' } }),
      ).toThrow(/a join would hold 6553600 characters/);
      expect(evaluate({ expression: `[${grown('s', 4)}].map(a, [a, a].join(a).size())[0]`, parameters: { s: 'abcdefghij' } })).toEqual({
        value: 1966080,
      });
    });

    it('refuses hex, base64, bytes() and split results past the limits, before making them', () => {
      // 16 × 16⁴ = 1,048,576 characters; each hex() doubles it, and split('') made a list of 16 Mi items.
      const mebi = `${grown('"0123456789abcdef"', 4)}`;
      const doubled = (times: number) => Array.from({ length: times }).reduce<string>((inner) => `bytes(${inner}).hex()`, mebi);
      expect(evaluate({ expression: `size(${doubled(2)})`, parameters: {} })).toEqual({ value: 4194304 });
      expect(() => evaluate({ expression: `size(${doubled(4)}.split('').map(x, x))`, parameters: {} })).toThrow(
        /hex text would hold 8388608 characters, over the limit of 4194304/,
      );
      expect(() => evaluate({ expression: `bytes(${doubled(2)}.substring(1) + "é")`, parameters: {} })).toThrow(
        /bytes\(…\) would hold 4194305 bytes/,
      );
      expect(() => evaluate({ expression: `bytes(${doubled(1)}).base64() + ${doubled(1)}`, parameters: {} })).toThrow(/concatenation/);
      expect(() => evaluate({ expression: `size((${mebi} + "a").split(''))`, parameters: {} })).toThrow(/a split would hold 1048577 items/);
      expect(evaluate({ expression: `size((${mebi} + "a").split('', 3))`, parameters: {} })).toEqual({ value: 3 });
      expect(evaluate({ expression: `size(${mebi}.split('0'))`, parameters: {} })).toEqual({ value: 65537 });
    });

    it('refuses an evaluation that makes more than 64 MiB outside the thread heap in all, each value within its limit', () => {
      // Twenty 4 Mi-character hex strings: each at the limit, 80 Mi in all. Such strings live outside the thread's
      // heap, so its heap limit would never stop a thousand of them (4 GB of worker memory).
      const mebi = `${grown('"0123456789abcdef"', 4)}`;
      const twenty = Array.from({ length: 20 }, (_, i) => i).join(', ');
      expect(() => evaluate({ expression: `[${twenty}].map(i, bytes(${mebi} + ${mebi}).hex()).size()`, parameters: {} })).toThrow(
        /the expression made more than 67108864 bytes outside the thread's heap in all/,
      );
      // The count starts over with each evaluation: the same expression over fewer items passes, every time.
      for (let run = 0; run < 3; run++)
        expect(evaluate({ expression: `[0, 1, 2].map(i, bytes(${mebi} + ${mebi}).hex()).size()`, parameters: {} })).toEqual({ value: 3 });
    });

    it('refuses a result nested deeper than 64 levels, a matches() pattern over 4,096 characters, and a result past 64 MiB', () => {
      const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
      expect(() => evaluate({ expression: 'bytes(s).json()', parameters: { s: nested(3000) } })).toThrow(
        /result nests deeper than 64 levels/,
      );
      expect(evaluate({ expression: 'size(bytes(s).json())', parameters: { s: nested(3000) } })).toEqual({ value: 1 });
      expect(evaluate({ expression: 'bytes(s).json()', parameters: { s: nested(64) } }).value).toBeInstanceOf(Array);
      expect(() => evaluate({ expression: '"a".matches(p)', parameters: { p: 'a'.repeat(4097) } })).toThrow(
        /a matches\(\) pattern would hold 4097 characters, over the limit of 4096/,
      );
      expect(evaluate({ expression: '"a".matches(p)', parameters: { p: 'a?'.repeat(2048) } })).toEqual({ value: true });
      // Twenty copies of one 4 Mi-character string: 80 Mi characters, refused on the thread before any copy leaves it.
      const fourMebi = `${grown('"0123456789abcdef"', 4)} + ${grown('"0123456789abcdef"', 4)} + ${grown('"0123456789abcdef"', 4)} + ${grown('"0123456789abcdef"', 4)}`;
      expect(() =>
        evaluate({ expression: `[${fourMebi}].map(s, [${Array.from({ length: 20 }, () => 's').join(', ')}])[0]`, parameters: {} }),
      ).toThrow(/^result_too_large: the result is at least \d+ bytes of JSON, more than any job may return/);
    });

    it('keeps ordinary concatenations and joins', () => {
      expect(evaluate({ expression: 's + t', parameters: { s: 'ab', t: 'cd' } })).toEqual({ value: 'abcd' });
      expect(evaluate({ expression: 'l + [3]', parameters: { l: [1, 2] } })).toEqual({ value: [1, 2, 3] });
      expect(evaluate({ expression: 'x + y', parameters: { x: 1, y: 2 } })).toEqual({ value: 3 });
      expect(evaluate({ expression: 'l.join("-")', parameters: { l: ['a', 'b'] } })).toEqual({ value: 'a-b' });
      expect(evaluate({ expression: '"a,b".split(",")', parameters: {} })).toEqual({ value: ['a', 'b'] });
      expect(evaluate({ expression: '[b"ab".hex(), bytes("hé").base64(), string(bytes("x"))]', parameters: {} })).toEqual({
        value: ['6162', 'aMOp', 'x'],
      });
    });
  });

  it('reports per-item errors in a chunk without failing the others', () => {
    const results = evaluateMany([
      { expression: 'x', parameters: { x: 1 } },
      { expression: 'missing + 1', parameters: {} },
    ]);
    expect(results[0]).toEqual({ value: 1 });
    expect(results[1]).toHaveProperty('error');
  });

  it('describes an expression shape', () => {
    expect(analyze({ expression: '[1, 2].map(a, a * k).size() + max(x, 2)' })).toMatchObject({
      variables: ['k', 'x'],
      functions: ['map', 'max', 'size'],
    });
  });
});

describe('expression checks', () => {
  const env = createCelEnvironment();
  it('locates a syntax error', () => {
    expect(checkExpression(env, 'x *\n (y')).toMatchObject({ position: { line: 2 } });
  });
  it('accepts a valid expression', () => {
    expect(checkExpression(env, 'x > 3 ? "big" : "small"')).toBeNull();
  });
});
