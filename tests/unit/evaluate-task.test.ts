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
