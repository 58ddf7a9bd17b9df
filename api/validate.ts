import { z } from 'zod';
import { isLimitIssue } from '../jobs/input-limits.js';
import { describeFieldErrors, fieldErrors, ProblemError, type FieldError } from './problems.js';

/**
 * The problem for input a zod schema refused, each field named under `source` (`body`, `query.limit`,
 * `body.payload`): 422 when every issue is a limit exceeded (well-formed input asking for too much),
 * else 400 — malformed input is what has to be fixed first.
 */
export function inputProblem(error: z.ZodError, source: string, what = source, unknownFieldHints?: Record<string, string>): ProblemError {
  return fieldErrorsProblem(fieldErrors(error, source, unknownFieldHints), error.issues.every(isLimitIssue), what);
}

/** The problem for field errors gathered from several zod errors (a bulk route checks item by item): 422 when all are limits, else 400. */
export function fieldErrorsProblem(errors: FieldError[], allLimits: boolean, what: string): ProblemError {
  const listed = describeFieldErrors(errors);
  if (allLimits) return new ProblemError('unprocessable', `${what} exceeds a limit: ${listed}`, { errors });
  return new ProblemError('validation', `invalid ${what}: ${listed}`, { errors });
}

/**
 * Parses with a zod schema; failures are problems naming each field (see inputProblem). `unknownFieldHints`
 * answers a likely mistake (an unknown field by that name) with what to send instead.
 */
export function parseInput<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  source: 'body' | 'query' | 'params',
  unknownFieldHints?: Record<string, string>,
): z.output<Schema> {
  const result = schema.safeParse(value ?? (source === 'body' ? undefined : {}));
  if (!result.success) throw inputProblem(result.error, source, source, unknownFieldHints);
  return result.data;
}

/** The body of a route whose fields are all optional: `{}` when none was sent; JSON `null` stays a wrong type (400). */
export const optionalBody = (body: unknown): unknown => (body === undefined ? {} : body);

/** The body of a route that takes none: no body (or JSON `null`) or `{}`. */
const noBody = z.strictObject({});

/**
 * Refuses a body with fields on a route that takes none, as any other route refuses an unknown field (400,
 * `body.<name>` unknown field), so that a misplaced option is never silently ignored. No body and `{}` pass.
 */
export function refuseBodyFields(body: unknown): void {
  parseInput(noBody, body ?? {}, 'body');
}

/** Refuses a query string with fields on a route that takes none (400, `query.<name>` unknown field), as a list route refuses an unknown filter. */
export function refuseQueryFields(query: unknown): void {
  parseInput(noBody, query ?? {}, 'query');
}
