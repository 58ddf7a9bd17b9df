import type { z } from 'zod';

/**
 * Limits: upper bounds the service puts on how much one request may ask for — items in a batch, keys and
 * bytes of parameters or metadata, depth of a traversal, attempts, delay. A value past one is well formed
 * but breaks a rule, so the API answers 422, not the 400 of malformed input (SPEC §5). Each limit is a
 * refinement tagged with `params.limit`, which `isLimitIssue` recognises, and carries its bound into the
 * OpenAPI document as the JSON Schema keyword.
 *
 * Not limits (they stay 400): `?limit=` of a list page (SPEC §5 says so), the length of a name, URL or
 * token, and ranges that define what a value means (a priority, an HTTP status).
 */
const limitTag = { limit: true } as const;

const formatted = (count: number) => count.toLocaleString('en-US');

/** `schema` with a limit: `within(value)` false is a 422 saying `message`. */
function limited<Schema extends z.ZodType>(
  schema: Schema,
  within: (value: z.output<Schema>) => boolean,
  message: string,
  jsonSchema?: Record<string, unknown>,
): Schema {
  const refined = schema.refine(within, { message, params: limitTag });
  return jsonSchema ? refined.meta(jsonSchema) : refined;
}

/** An array of at most `max` items (`noun` names them in the message). */
export const atMostItems = <Schema extends z.ZodType<unknown[]>>(schema: Schema, max: number, noun: string): Schema =>
  limited(schema, (items) => items.length <= max, `at most ${formatted(max)} ${noun}`, { maxItems: max });

/** An object of at most `max` keys. */
export const atMostKeys = <Schema extends z.ZodType<Record<string, unknown>>>(schema: Schema, max: number, noun: string): Schema =>
  limited(schema, (value) => Object.keys(value).length <= max, `at most ${formatted(max)} ${noun}`, { maxProperties: max });

/** A value whose JSON text is at most `maxBytes` characters long. */
export const atMostJson = <Schema extends z.ZodType>(schema: Schema, maxBytes: number, what: string): Schema =>
  limited(schema, (value) => JSON.stringify(value).length <= maxBytes, `${what} must serialise to at most ${maxBytes / 1024} KiB`);

/** A number of at most `max`. */
export const atMost = <Schema extends z.ZodType<number>>(schema: Schema, max: number): Schema =>
  limited(schema, (value) => value <= max, `must be at most ${formatted(max)}`, { maximum: max });

/**
 * True when `issue` is a limit exceeded rather than malformed input: a tagged limit, or a whole number past
 * 2^53 − 1 (zod's `int()` bound), which is as well formed as one just past the field's limit (`delay_ms` 1e20 is
 * a 422 like 31,536,000,001). A meaning-defining range (a priority) still reports its own 400 issue beside it.
 */
export function isLimitIssue(issue: z.core.$ZodIssue): boolean {
  if (issue.code === 'custom') return issue.params?.limit === true;
  return issue.code === 'too_big' && issue.origin === 'int';
}
