import { batchPayloadSchema, type BatchPayload } from '../../jobs/batch/batch.job.js';
import { checkBulkSubmit, type BulkSubmitRequest, type CheckedBulkJob } from '../bulk-jobs.js';
import { unstorableInput, type FieldNaming } from '../input-guard.js';
import { decodeJsonBody, type JsonBody } from '../json-body.js';
import { batchEnvelope, nameHint } from '../routes/substrate-bodies.js';
import { malformedJsonProblem, ProblemError, type ProblemType } from '../problems.js';
import { fieldErrorsProblem, parseInput } from '../validate.js';
import { checkBatchItems } from './prepare-substrate.js';
import { requestHashOf } from '../request-hash.js';

/**
 * The batch checker's Piscina task (substrate-batch-checker.ts): a pure entry module. Parsing a 10 MB
 * `POST /substrates/batch` body, checking its 60,000 metadata keys and compiling its 1,000 expressions took
 * seconds of CPU; here they take the checker's thread, not the API's event loop. So do the parse and checks
 * of a large `POST /batches` or `POST /jobs/bulk` body (~300 ms of the event loop for 15 MB).
 */

/** A problem as it crosses the thread boundary (a class instance does not): the API rebuilds the ProblemError. */
export interface PlainProblem {
  type: ProblemType;
  detail: string;
  extra: Record<string, unknown>;
}

/** A check's outcome as it crosses the thread boundary: the checked value, or the problem to answer. */
export type Checked<Value> = { ok: true; value: Value } | { ok: false; problem: PlainProblem };

/** A customer's body as sent, in bytes and charset (decoded here), or null when the request had none. */
export interface SentBody {
  body: JsonBody | null;
}

export interface BatchInput extends SentBody {
  customerId: string;
}

/**
 * A substrate batch that passed its checks: every item's id in the order sent (repeats included) and the
 * distinct rows as one JSON text, ready for the insert's `jsonb_to_recordset` parameter.
 */
export interface CheckedBatch {
  ids: string[];
  rows: string;
}

export type BulkSubmitInput = BulkSubmitRequest & SentBody;

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

/**
 * The only parse of a customer's body (the API did not check its syntax): undefined for no body, and
 * malformed JSON answers as the JSON parser's did.
 */
function parseSent(sent: JsonBody | null): unknown {
  try {
    return sent === null ? undefined : parseBody(decodeJsonBody(sent));
  } catch (error) {
    if (error instanceof SyntaxError) throw malformedJsonProblem();
    throw error;
  }
}

/** Refuses what the input guard (api/input-guard.ts) refuses in a body, with its answer, as it would name the fields. */
function refuseUnstorable(body: unknown, source: string, naming: FieldNaming): void {
  const unstorable = unstorableInput(body, source, 10, naming);
  if (unstorable.length > 0) throw fieldErrorsProblem(unstorable, false, 'input');
}

/** Runs `check`, its ProblemError turned into a problem that crosses the thread boundary. */
function answered<Value>(check: () => Value): Checked<Value> {
  try {
    return { ok: true, value: check() };
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    return { ok: false, problem: { type: error.type, detail: error.detail, extra: error.extra } };
  }
}

/** Parses and checks a substrate batch body with the answers the route gives (see checkBatchItems). */
export function checkBatch({ customerId, body: sent }: BatchInput): Checked<CheckedBatch> {
  return answered(() => {
    const { substrates } = parseInput(batchEnvelope, parseSent(sent), 'body', nameHint);
    const prepared = checkBatchItems(customerId, substrates);
    const distinct = [...new Map(prepared.map((substrate) => [substrate.id, substrate])).values()];
    return { ids: prepared.map((substrate) => substrate.id), rows: JSON.stringify(distinct) };
  });
}

export interface JobBatchInput extends SentBody {
  /** `[method, path]` of a request with an Idempotency-Key: the answer then carries its `requestHashOf`; else null. */
  hashOf: [method: string, path: string] | null;
}

/**
 * A `POST /batches` body that passed its checks: the batch job's payload as JSON text (the API never holds it as an
 * object: 15 MB of them cost its event loop a structured clone, a serialisation and, with a key, a hash), and the
 * request's hash when asked for.
 */
export interface CheckedJobBatch {
  payloadText: string;
  requestHash: string | null;
}

/**
 * Parses and checks a `POST /batches` body as the JSON parser, the input guard and the route's schema did,
 * in that order and with their answers; the payload of the batch job it asks for.
 */
export function checkJobBatch({ body: sent, hashOf }: JobBatchInput): Checked<CheckedJobBatch> {
  return answered(() => {
    const body = parseSent(sent);
    refuseUnstorable(body, 'body', 'dotted');
    // The route's `createBatchBody` (api/routes/batches.routes.ts), which this module cannot load: it reaches the database.
    const payload: BatchPayload = parseInput(batchPayloadSchema, body, 'body');
    return {
      payloadText: JSON.stringify(payload),
      // Of the payload, as the route hashed its body before (the parsed body: equal to it but for the order of keys, which the hash does not see).
      requestHash: hashOf ? requestHashOf(hashOf[0], hashOf[1], payload) : null,
    };
  });
}

/**
 * Parses and checks a `POST /jobs/bulk` body as the JSON parser, the input guard (fields named `jobs[3].x`)
 * and the route (checkBulkSubmit) did, in that order and with their answers.
 */
export function checkBulkJobs({ body: sent, ...request }: BulkSubmitInput): Checked<CheckedBulkJob[]> {
  return answered(() => {
    const body = parseSent(sent);
    refuseUnstorable(body, '', 'bracketed');
    return checkBulkSubmit(request, body);
  });
}

/** Piscina loads a task module through its default export (without one, a `.ts` module fails to load under tsx). */
export default checkBatch;
