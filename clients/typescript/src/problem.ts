import type { Problem } from './types.js';

export type FieldError = NonNullable<Problem['errors']>[number];

const typeBase = 'https://chrysalis.dev/problems/';

/**
 * An RFC 9457 problem the API answered with, as an exception: `type` (the short name, e.g. `validation`,
 * `rate-limited`), `status`, `title`, `detail` and the field `errors` (`body.payload.substrate_id`, …).
 */
export class ChrysalisProblem extends Error {
  override name = 'ChrysalisProblem';
  /** The short problem type: `validation`, `not-found`, `rate-limited`, … (the full URI is `typeUri`). */
  readonly type: string;
  readonly typeUri: string;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[];
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfterSeconds: number | null;
  /** Every member of the problem body, extensions included (e.g. `state` of a 409). */
  readonly body: Record<string, unknown>;

  constructor(status: number, body: unknown, retryAfter: string | null = null) {
    const problem = isProblemBody(body)
      ? body
      : {
          type: 'about:blank',
          title: statusTitle(status),
          status,
          detail: typeof body === 'string' && body ? body.slice(0, 500) : statusTitle(status),
        };
    super(`${problem.title} (${status}): ${problem.detail}`);
    this.typeUri = problem.type;
    this.type = problem.type.startsWith(typeBase) ? problem.type.slice(typeBase.length) : problem.type;
    this.status = status;
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.retryAfterSeconds = parseRetryAfter(retryAfter);
    this.body = problem as Record<string, unknown>;
  }

  /** A problem built from a fetch Response whose body was already read. */
  static from(response: Response, body: unknown): ChrysalisProblem {
    return new ChrysalisProblem(response.status, body, response.headers.get('retry-after'));
  }
}

function isProblemBody(body: unknown): body is Problem {
  const candidate = body as Partial<Problem> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.type === 'string' && typeof candidate.title === 'string';
}

function statusTitle(status: number): string {
  return status >= 500 ? 'Server error' : `HTTP ${status}`;
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date. Null when absent or unreadable. */
export function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
