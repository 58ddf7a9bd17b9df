import type { NewSubstrate } from '../../db/repositories/substrate-store.js';
import { checkExpression, createCelEnvironment } from '../../jobs/invoke/cel-environment.js';
import { isLimitIssue } from '../../jobs/input-limits.js';
import { fieldErrors, ProblemError, type FieldError } from '../problems.js';
import { unstorableInput } from '../input-guard.js';
import { fieldErrorsProblem } from '../validate.js';
import { createSubstrateBody, nameHint, type CreateSubstrate } from '../routes/substrate-bodies.js';
import { substrateIdentity } from '../routes/substrate-identity.js';

/**
 * Turning substrate bodies into rows: CEL syntax checks and identities. Pure (no I/O), so it runs on the API's
 * thread for one substrate and in the batch checker's thread (substrate-batch.task.ts) for a batch.
 */

const celEnvironment = createCelEnvironment();

/** Checks syntax and builds the row; a bad expression is a 422 naming the field and position. */
export function prepareSubstrate(customerId: string, body: CreateSubstrate, field: string): NewSubstrate | FieldError {
  if (body.expression_type === 'expression') {
    const problem = checkExpression(celEnvironment, body.expression);
    if (problem) {
      const where = problem.position ? ` at line ${problem.position.line}, column ${problem.position.column}` : '';
      return {
        field: `${field}.expression`,
        message: `${problem.message}${where}`,
        ...(problem.position ? { position: problem.position } : {}),
      };
    }
  }
  const source = body.expression_type === 'expression' ? body.expression : String(body.value);
  return {
    ...substrateIdentity(customerId, body.expression_type, source),
    customerId,
    expressionType: body.expression_type,
    expression: body.expression_type === 'expression' ? body.expression : null,
    value: body.expression_type === 'constant' ? body.value : null,
    metadata: body.metadata ?? {},
  };
}

export const isFieldError = (value: NewSubstrate | FieldError): value is FieldError => 'field' in value;

/** Unstorable values one answer names, as the input guard (api/input-guard.ts). */
const maxUnstorableListed = 10;

/**
 * Checks a batch's items as the route's whole-body schema, the input guard and prepareSubstrate would, with
 * the same answers: 400 unstorable or malformed, 422 limits, then 422 expressions that do not parse.
 */
export function checkBatchItems(customerId: string, items: readonly unknown[]): NewSubstrate[] {
  const unstorable: FieldError[] = [];
  const invalid: FieldError[] = [];
  let allLimits = true;
  const unparsed: FieldError[] = [];
  const prepared: NewSubstrate[] = [];
  items.forEach((item, index) => {
    const field = `body.substrates.${index}`;
    // As the input guard: at most 10 unstorable values named, and once there is one, nothing else matters.
    if (unstorable.length < maxUnstorableListed) unstorable.push(...unstorableInput(item, field, maxUnstorableListed - unstorable.length));
    if (unstorable.length > 0) return;
    const parsed = createSubstrateBody.safeParse(item);
    if (!parsed.success) {
      invalid.push(...fieldErrors(parsed.error, field, nameHint));
      allLimits &&= parsed.error.issues.every(isLimitIssue);
      return;
    }
    // A malformed body is refused as such; compiling the rest would be wasted.
    if (invalid.length > 0) return;
    const result = prepareSubstrate(customerId, parsed.data, field);
    if (isFieldError(result)) unparsed.push(result);
    else prepared.push(result);
  });
  if (unstorable.length > 0) throw fieldErrorsProblem(unstorable, false, 'input');
  if (invalid.length > 0) throw fieldErrorsProblem(invalid, allLimits, 'body');
  if (unparsed.length > 0)
    throw new ProblemError('unprocessable', `${unparsed.length} substrate(s) do not parse; none were created`, { errors: unparsed });
  return prepared;
}
