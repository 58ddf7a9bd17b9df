import { decodeJsonBody, type JsonBody } from '../json-body.js';
import { batchEnvelope, nameHint } from '../routes/substrate-bodies.js';
import { malformedJsonProblem, ProblemError, type ProblemType } from '../problems.js';
import { parseInput } from '../validate.js';
import { checkBatchItems } from './prepare-substrate.js';

/**
 * The batch checker's Piscina task (substrate-batch-checker.ts): a pure entry module. Parsing a 10 MB
 * `POST /substrates/batch` body, checking its 60,000 metadata keys and compiling its 1,000 expressions took
 * seconds of CPU; here they take the checker's thread, not the API's event loop.
 */

/** A problem as it crosses the thread boundary (a class instance does not): the API rebuilds the ProblemError. */
export interface PlainProblem {
  type: ProblemType;
  detail: string;
  extra: Record<string, unknown>;
}

export interface BatchInput {
  customerId: string;
  /** The body as sent, in bytes and charset (decoded here), or null when the request had none. */
  body: JsonBody | null;
}

/**
 * The checked batch: every item's id in the order sent (repeats included) and the distinct rows as one JSON
 * text, ready for the insert's `jsonb_to_recordset` parameter; or the problem to answer.
 */
export type BatchCheck = { ok: true; ids: string[]; rows: string } | { ok: false; problem: PlainProblem };

/** As body-parser's JSON parser: an empty body is `{}`. Throws SyntaxError on malformed JSON. */
const parseBody = (text: string): unknown => (text.length === 0 ? {} : JSON.parse(text));

/** Whether `body` is a JSON body body-parser would accept. */
export function isJson(body: JsonBody): boolean {
  try {
    parseBody(decodeJsonBody(body));
    return true;
  } catch {
    return false;
  }
}

/** Parses and checks a batch body with the answers the route gives (see checkBatchItems). */
export function checkBatch({ customerId, body: sent }: BatchInput): BatchCheck {
  try {
    // The only parse of a customer's body (the API did not check its syntax): malformed JSON answers as the JSON parser's did.
    let body: unknown;
    try {
      body = sent === null ? undefined : parseBody(decodeJsonBody(sent));
    } catch (error) {
      if (error instanceof SyntaxError) throw malformedJsonProblem();
      throw error;
    }
    const { substrates } = parseInput(batchEnvelope, body, 'body', nameHint);
    const prepared = checkBatchItems(customerId, substrates);
    const distinct = [...new Map(prepared.map((substrate) => [substrate.id, substrate])).values()];
    return { ok: true, ids: prepared.map((substrate) => substrate.id), rows: JSON.stringify(distinct) };
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    return { ok: false, problem: { type: error.type, detail: error.detail, extra: error.extra } };
  }
}

/** Piscina loads a task module through its default export (without one, a `.ts` module fails to load under tsx). */
export default checkBatch;
