import type { z } from 'zod';
import { fieldErrors, ProblemError } from './problems.js';

/** Parses with a zod schema; failures are 400 problems naming each field. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, value: unknown, source: 'body' | 'query' | 'params'): z.output<Schema> {
  const result = schema.safeParse(value ?? (source === 'body' ? undefined : {}));
  if (!result.success) {
    const errors = fieldErrors(result.error, source);
    throw new ProblemError('validation', `invalid ${source}: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`, { errors });
  }
  return result.data;
}
