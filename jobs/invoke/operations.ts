import { z } from 'zod';
import { PermanentJobError } from '../errors.js';
import { atMostItems } from '../input-limits.js';

const finite = z.number().finite();
/** Most values one multiply may collapse. */
export const maxDimensionValues = 10_000;

export const operationSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('add'), value: finite }),
  z.strictObject({ op: z.literal('subtract'), value: finite }),
  z.strictObject({ op: z.literal('modulus'), modulus: finite }),
  z.strictObject({ op: z.literal('power'), exponent: finite }),
  z.strictObject({ op: z.literal('root'), degree: finite }),
  z.strictObject({
    op: z.literal('multiply'),
    dimension_values: atMostItems(z.array(finite).min(1), maxDimensionValues, 'dimension values'),
  }),
]);
export type Operation = z.infer<typeof operationSchema>;
export type ValueOperation = Exclude<Operation, { op: 'multiply' }>;

function finiteOrFail(result: number, what: string): number {
  if (!Number.isFinite(result)) throw new PermanentJobError(`${what} is not a finite number`);
  return result;
}

/** The ButterflyFx operators on a substrate's value. Pure; failures are permanent. */
export function applyOperation(value: number, operation: ValueOperation): Record<string, unknown> {
  switch (operation.op) {
    case 'add':
    case 'subtract': {
      const newValue = operation.op === 'add' ? value + operation.value : value - operation.value;
      return { original_value: value, new_value: finiteOrFail(newValue, `${operation.op} result`), operation: operation.op };
    }
    case 'modulus': {
      if (operation.modulus === 0) throw new PermanentJobError('modulus must not be 0');
      const expressed = finiteOrFail(((value % operation.modulus) + operation.modulus) % operation.modulus, 'modulus result');
      return { value, modulus: operation.modulus, expressed, residue: value - expressed };
    }
    case 'power':
      return { value, exponent: operation.exponent, result: finiteOrFail(value ** operation.exponent, 'power result') };
    case 'root': {
      const { degree } = operation;
      if (degree === 0) throw new PermanentJobError('root degree must not be 0');
      const evenInteger = Number.isInteger(degree) && degree % 2 === 0;
      if (value < 0 && evenInteger) throw new PermanentJobError(`even root (degree ${degree}) of a negative value (${value})`);
      if (value < 0 && !Number.isInteger(degree))
        throw new PermanentJobError(`fractional root (degree ${degree}) of a negative value (${value})`);
      const magnitude = Math.abs(value) ** (1 / degree);
      return { value, degree, result: finiteOrFail(value < 0 ? -magnitude : magnitude, 'root result') };
    }
  }
}

export function multiply(dimensionValues: number[]): Record<string, unknown> {
  const unity = dimensionValues.reduce((product, factor) => product * factor, 1);
  return { unity_value: finiteOrFail(unity, 'product'), operation: 'multiply', dimensions_collapsed: dimensionValues.length };
}
