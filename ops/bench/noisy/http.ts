/**
 * The noisy-neighbour scenarios speak to Chrysalis only over its public HTTP API, as a customer would.
 * One small wrapper around fetch: JSON in, JSON (or text) out, the answer's time measured.
 */

export interface Answer {
  status: number;
  /** Parsed JSON, or null when the answer was not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Milliseconds from sending to the last byte. */
  ms: number;
  /** Set when no HTTP answer came at all (connection refused or reset, timeout). */
  networkError?: string;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** A body already serialised (the large attack bodies are built once and sent many times). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Give up after this long (default 120 s); a give-up is a `networkError`, status 0. */
  timeoutMs?: number;
}

/** `api` is the base URL including `/api/v1`. Never throws: a failed call is status 0 with `networkError`. */
export async function call(api: string, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const started = performance.now();
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  try {
    const response = await fetch(api + path, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
    });
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (an HTML error page, an empty body)
    }
    return { status: response.status, body: parsed, ms: performance.now() - started };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { status: 0, body: null, ms: performance.now() - started, networkError: cause ?? String(error) };
  }
}

/** Like `call`, but any answer other than `expected` throws (for setup steps, which must work). */
export async function expectCall(
  api: string,
  method: string,
  path: string,
  expected: number[],
  options: CallOptions = {},
): Promise<Answer> {
  const answer = await call(api, method, path, options);
  if (!expected.includes(answer.status)) {
    throw new Error(
      `${method} ${path}: expected ${expected.join('/')}, got ${answer.status} ${answer.networkError ?? JSON.stringify(answer.body)}`,
    );
  }
  return answer;
}

/** Counts of answers by status ("0" = no answer), e.g. `{ "202": 40, "429": 3 }`. */
export class StatusCounts {
  readonly counts: Record<string, number> = {};
  /** One example problem `detail` (or network error) per non-2xx status, to show what the client was told. */
  readonly examples: Record<string, string> = {};

  add(answer: Answer): void {
    const key = String(answer.status);
    this.counts[key] = (this.counts[key] ?? 0) + 1;
    if ((answer.status < 200 || answer.status >= 300) && !(key in this.examples)) {
      const detail = answer.networkError ?? answer.body?.detail ?? answer.body?.title ?? '(no problem body)';
      this.examples[key] = String(detail).slice(0, 160);
    }
  }

  /** Statuses that are not a clear answer to a client: any 5xx but 503, and no answer at all. */
  unclear(): string[] {
    return Object.keys(this.counts).filter((status) => status === '0' || (Number(status) >= 500 && status !== '503'));
  }

  toString(): string {
    return Object.entries(this.counts)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([status, count]) => `${status}×${count}`)
      .join(' ');
  }
}
