import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';

const typeBase = 'https://chrysalis.dev/problems/';

/** Stable problem types. The `type` URI of each is `https://chrysalis.dev/problems/<name>`. */
export const problemTypes = {
  validation: { status: 400, title: 'Invalid request' },
  unprocessable: { status: 422, title: 'Request breaks a rule' },
  unauthorized: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Forbidden' },
  'tos-required': { status: 403, title: 'Terms of service must be accepted' },
  'not-found': { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  'request-timeout': { status: 408, title: 'Request timeout' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'headers-too-large': { status: 431, title: 'Request header fields too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'payment-required': { status: 402, title: 'Payment required' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'too-many-jobs': { status: 429, title: 'Too many unfinished jobs' },
  unavailable: { status: 503, title: 'Service unavailable' },
  internal: { status: 500, title: 'Internal error' },
} as const;
export type ProblemType = keyof typeof problemTypes;

export interface FieldError {
  /** Where the problem is: `body.payload.substrate_id`, `query.limit`, `header.idempotency-key`. */
  field: string;
  message: string;
}

/** Most field errors one answer lists; `errors_total` then counts them all (a 1,500-item batch had answered 290 KB). */
export const maxListedErrors = 100;

type ProblemExtra = { errors?: FieldError[]; headers?: Record<string, string>; [key: string]: unknown };

/** The one error type routes throw; the error middleware renders it as RFC 9457 problem+json. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  /** Members of the problem besides type, title, status and detail; `errors` holds at most `maxListedErrors`. */
  readonly extra: ProblemExtra;
  constructor(
    readonly type: ProblemType,
    readonly detail: string,
    extra: ProblemExtra = {},
  ) {
    super(detail);
    this.extra =
      extra.errors && extra.errors.length > maxListedErrors
        ? { ...extra, errors: extra.errors.slice(0, maxListedErrors), errors_total: extra.errors.length }
        : extra;
  }
  get status(): number {
    return problemTypes[this.type].status;
  }
}

/** `field message; …` for a detail: the first `maxListedErrors`, then how many more there are. */
export function describeFieldErrors(errors: FieldError[]): string {
  const listed = errors
    .slice(0, maxListedErrors)
    .map((e) => `${e.field} ${e.message}`)
    .join('; ');
  const more = errors.length - maxListedErrors;
  return more > 0 ? `${listed}; and ${more.toLocaleString('en-US')} more` : listed;
}

/** The answer to a body that is not JSON (body-parser's parse error, or a route's own check). */
export const malformedJsonProblem = () =>
  new ProblemError('validation', 'request body is not valid JSON', { errors: [{ field: 'body', message: 'malformed JSON' }] });

/** The `type` of the error `refuseInvalidUtf8` throws (body-parser keeps it on the error it passes on). */
export const invalidUtf8Type = 'entity.invalid.utf8';

/** The answer to a body declared UTF-8 (or of no charset) whose bytes are not UTF-8: decoded, they would be silently replaced. */
export const invalidUtf8Problem = () =>
  new ProblemError('validation', 'request body is not valid UTF-8', { errors: [{ field: 'body', message: 'invalid UTF-8' }] });

export const notFound = (what: string) => new ProblemError('not-found', `${what} not found`);

/** A create refused by a tier's cap of things a customer keeps: `had` of at most `cap`, and it would add `adding`. */
export interface CapReached {
  cap: number;
  had: number;
  adding: number;
}

/**
 * The 422 of a create that would take its customer past a tier's cap of `things` (`capName` names the cap in the
 * answer's `cap`), with `limit`, `count` and `requested`; `remedy` says how to make room.
 */
export function capProblem(
  capName: string,
  things: string,
  { cap: limit, had, adding }: CapReached,
  field: string,
  remedy: string,
): ProblemError {
  const count = (n: number) => n.toLocaleString('en-US');
  const message = `a customer may keep at most ${count(limit)} ${things}; it has ${count(had)} and this would add ${count(adding)} (${remedy})`;
  return new ProblemError('unprocessable', message, { errors: [{ field, message }], cap: capName, limit, count: had, requested: adding });
}

export function problemBody(type: ProblemType, detail: string, extra: Record<string, unknown> = {}) {
  const { status, title } = problemTypes[type];
  return { type: typeBase + type, title, status, detail, ...extra };
}

export const problemSchema = z.object({
  type: z.string().url(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  errors_total: z.int().optional().describe(`How many field errors there were, when more than the ${maxListedErrors} listed in \`errors\``),
});

/**
 * Turns a zod error into field errors, prefixing where the value came from (`body`, `query`, `params`).
 * `unknownFieldHints` gives an unknown field a message of its own that says what to send instead.
 */
export function fieldErrors(error: z.ZodError, source: string, unknownFieldHints: Record<string, string> = {}): FieldError[] {
  return error.issues.flatMap((issue) => {
    const path = [source, ...issue.path.map(String)].join('.');
    // zod's int() reports a whole number past 2^53 − 1 under the schema's own int message ("must be a whole number"), which 1e20 is.
    if (issue.code === 'too_big' && issue.origin === 'int')
      return [{ field: path, message: `must be at most ${issue.maximum} (2^53 − 1)` }];
    if (issue.code !== 'unrecognized_keys') return [{ field: path, message: issue.message }];
    // One error per unknown key, so a body of 90,000 unknown keys answers the first `maxListedErrors` and a count
    // (ProblemError caps the list) rather than one field naming them all (it had answered 3.7 MB).
    return issue.keys.map((key) =>
      Object.hasOwn(unknownFieldHints, key)
        ? { field: `${path}.${key}`, message: unknownFieldHints[key] as string }
        : { field: `${path}.${shortKey(key)}`, message: 'unknown field' },
    );
  });
}

/** Longest key a field error repeats; a longer one is cut with `…` (a 1 MiB key must not come back whole). */
export const maxEchoedKeyLength = 128;
/** An unknown key as a field error names it: cut to `maxEchoedKeyLength` characters and `…`. */
export const shortKey = (key: string): string => (key.length > maxEchoedKeyLength ? `${key.slice(0, maxEchoedKeyLength)}…` : key);

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new ProblemError('not-found', `no route for ${req.method} ${req.path}`));
};

/** The one error middleware: ProblemError as-is, body-parser errors as 400/413/415, anything else 500 without a stack. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const problem = toProblem(error);
    if (problem.status === 500) (req.log ?? logger).error({ err: error }, 'request failed');
    else if (problem.status === 503) (req.log ?? logger).warn({ err: error }, 'backing service unavailable');
    if (res.headersSent) return res.end();
    for (const [name, value] of Object.entries(problem.extra.headers ?? {})) res.setHeader(name, value);
    const { headers: _headers, ...extra } = problem.extra;
    res
      .status(problem.status)
      .type('application/problem+json')
      .send(JSON.stringify(problemBody(problem.type, problem.detail, extra)));
  };
}

/**
 * Messages of PostgreSQL or Redis being unreachable or saturated: knex's pool acquire timeout (every pooled
 * connection busy), pg's connect timeout (`timeout expired`, a new connection not accepted within
 * connectionTimeoutMillis — four 10 MB batches in parallel answered 500 with it), pg-pool's own, refused or
 * reset sockets, PostgreSQL starting or stopping, Redis gone.
 */
const unavailablePattern =
  /Timeout acquiring a connection|timeout expired|timeout exceeded when trying to connect|ECONNREFUSED|ECONNRESET|Connection terminated|connect ETIMEDOUT|the database system is (starting up|shutting down)|too many clients already|Connection is closed|MaxRetriesPerRequestError/i;
/** Error names that mean the same: MikroORM's and knex's own classes for them. */
const unavailableNames = new Set(['ConnectionException', 'KnexTimeoutError']);
/** SQLSTATEs of a server refusing connections for now: too_many_connections, cannot_connect_now. */
const unavailableCodes = new Set(['53300', '57P03']);

/** PostgreSQL or Redis unreachable or its pool exhausted: a 503 the client may retry, not a 500. Looks through `cause` (MikroORM wraps driver errors). */
function isUnavailable(error: unknown): boolean {
  let candidate = error as { name?: string; message?: string; code?: string; cause?: unknown } | null;
  for (let depth = 0; candidate && depth < 4; depth++) {
    if (candidate.name && unavailableNames.has(candidate.name)) return true;
    if (candidate.code && unavailableCodes.has(candidate.code)) return true;
    if (unavailablePattern.test(`${candidate.message ?? ''} ${candidate.code ?? ''}`)) return true;
    candidate = candidate.cause as typeof candidate;
  }
  return false;
}

/** A path whose percent-encoding does not decode (`%E0%A4%A`: a `%` not followed by two hex digits, or bytes that are not UTF-8). */
function undecodablePathProblem(): ProblemError {
  const errors = [
    { field: 'path', message: 'is not valid percent-encoding: each % must start a %XX escape, and the escaped bytes must be UTF-8' },
  ];
  return new ProblemError('validation', `invalid path: ${describeFieldErrors(errors)}`, { errors });
}

/** A problem with one request header, named as a field (`header.content-encoding`). */
function headerProblem(type: 'validation' | 'unsupported-media-type', header: string, message: string): ProblemError {
  return new ProblemError(type, message, { errors: [{ field: `header.${header}`, message }] });
}

function toProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  const candidate = error as { type?: string; status?: number; statusCode?: number; message?: string; errno?: unknown } | null;
  const status = candidate?.status ?? candidate?.statusCode;
  switch (candidate?.type) {
    case 'entity.parse.failed':
      return malformedJsonProblem();
    case invalidUtf8Type:
      return invalidUtf8Problem();
    case 'entity.too.large':
      return new ProblemError('payload-too-large', 'request body is larger than this route accepts');
    case 'encoding.unsupported':
      return headerProblem('unsupported-media-type', 'content-encoding', candidate.message ?? 'unsupported content encoding');
    case 'charset.unsupported':
      return headerProblem('unsupported-media-type', 'content-type', candidate.message ?? 'unsupported charset');
  }
  // Express's router could not percent-decode a path parameter; its message echoes the raw text but names no field.
  if (error instanceof URIError && status === 400) return undecodablePathProblem();
  // zlib (gzip, deflate, br) could not inflate the body its Content-Encoding named: its errors carry an errno.
  if (status === 400 && typeof candidate?.errno === 'number')
    return headerProblem(
      'validation',
      'content-encoding',
      `the body is not valid data of its Content-Encoding (${candidate.message ?? 'inflating failed'})`,
    );
  if (status && status >= 400 && status < 500) {
    const message = candidate?.message ?? 'bad request';
    return new ProblemError('validation', message, { errors: [{ field: 'body', message }] });
  }
  if (isUnavailable(error))
    return new ProblemError('unavailable', 'a backing service is unavailable; try again shortly', { headers: { 'Retry-After': '5' } });
  return new ProblemError('internal', 'an unexpected error occurred; it has been logged');
}
