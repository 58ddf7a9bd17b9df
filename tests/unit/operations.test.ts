import { describe, expect, it } from 'vitest';
import { PermanentJobError } from '../../jobs/errors.js';
import { applyOperation, multiply } from '../../jobs/invoke/operations.js';

describe('operators', () => {
  it('adds and subtracts', () => {
    expect(applyOperation(10, { op: 'add', value: 5 })).toEqual({ original_value: 10, new_value: 15, operation: 'add' });
    expect(applyOperation(10, { op: 'subtract', value: 15 })).toEqual({ original_value: 10, new_value: -5, operation: 'subtract' });
  });

  it('splits a value into expressed and residue', () => {
    expect(applyOperation(17, { op: 'modulus', modulus: 5 })).toEqual({ value: 17, modulus: 5, expressed: 2, residue: 15 });
    expect(applyOperation(-7, { op: 'modulus', modulus: 3 })).toEqual({ value: -7, modulus: 3, expressed: 2, residue: -9 });
  });

  it('fails modulus 0 permanently', () => {
    expect(() => applyOperation(1, { op: 'modulus', modulus: 0 })).toThrow(PermanentJobError);
  });

  it('raises to a power and refuses overflow', () => {
    expect(applyOperation(2, { op: 'power', exponent: 10 })).toEqual({ value: 2, exponent: 10, result: 1024 });
    expect(() => applyOperation(10, { op: 'power', exponent: 400 })).toThrow(/finite/);
  });

  it('takes odd roots of negatives but not even ones', () => {
    expect(applyOperation(-27, { op: 'root', degree: 3 })).toMatchObject({ result: -3 });
    expect(applyOperation(16, { op: 'root', degree: 4 })).toMatchObject({ result: 2 });
    expect(() => applyOperation(-16, { op: 'root', degree: 2 })).toThrow(/even root/);
    expect(() => applyOperation(4, { op: 'root', degree: 0 })).toThrow(PermanentJobError);
  });

  it('multiplies dimension values into unity', () => {
    expect(multiply([2, 3, 4])).toEqual({ unity_value: 24, operation: 'multiply', dimensions_collapsed: 3 });
    expect(() => multiply([1e300, 1e300])).toThrow(/finite/);
  });
});
