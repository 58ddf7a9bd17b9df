import createClient, { type Client } from 'openapi-fetch';
import { ChrysalisProblem } from './problem.js';
import { rateLimitedFetch, type RateLimitOptions } from './rate-limited-fetch.js';
import type { paths } from './schema.js';
import { jobEvents, type JobEvent, type JobEventsOptions } from './events.js';
import { runBatch, type BatchOptions, type BatchOutcome } from './batches.js';
import { waitForJob, type WaitOptions } from './wait.js';
import type {
  BatchInvocation,
  BulkAccepted,
  BulkJobRequest,
  InvokeParameters,
  Job,
  JobAccepted,
  ListJobsQuery,
  RetryAccepted,
  SubmitJobRequest,
} from './types.js';

export interface ChrysalisClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:3000` (`/api/v1` is added when the URL has no path). */
  baseUrl: string;
  /** A JWT access token or an API key (`sk_live_…`), or a function giving the current one. Default: none. */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** 429 handling: `Retry-After` is waited out a few times before the problem is thrown. */
  rateLimit?: RateLimitOptions;
  /** The fetch to use. Default: the global one. */
  fetch?: typeof fetch;
}

export interface SubmitOptions {
  /** `Prefer: wait=N`: the server answers with the finished job if it finishes within N seconds (≤ 30). Default: no wait. */
  waitSeconds?: number;
  /** `Idempotency-Key`: the same key and body within 24 h give back the same job. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** Most jobs one `POST /jobs/bulk` takes (SPEC §9); `submitBulk` sends larger lists in chunks of this size. */
export const bulkChunkSize = 1000;

/** `/api/v1` unless the URL already names a path. */
export function apiBaseUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/api/v1';
  return url.toString().replace(/\/+$/, '');
}

/** Throws the answer's problem unless it is a success; returns its body. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw ChrysalisProblem.from(response, error);
  return data as T;
}

/**
 * The Chrysalis API client: `api` is the typed client generated from the OpenAPI document (every route, typed
 * request and answer), and the methods are the workflows people need on top of it — submit and wait, bulk
 * submit, retry, event streams, batches with progress. Every error answer is thrown as a `ChrysalisProblem`.
 */
export class ChrysalisClient {
  readonly api: Client<paths>;
  readonly baseUrl: string;
  /** The rate-limit-aware fetch every call goes through (events and untyped routes included). */
  readonly fetch: (request: Request, init?: RequestInit) => Promise<Response>;
  private readonly token: ChrysalisClientOptions['token'];

  constructor(options: ChrysalisClientOptions) {
    this.baseUrl = apiBaseUrl(options.baseUrl);
    this.token = options.token;
    this.fetch = rateLimitedFetch(options.fetch ?? globalThis.fetch, options.rateLimit);
    this.api = createClient<paths>({ baseUrl: this.baseUrl, fetch: (request: Request) => this.fetch(request) });
    this.api.use({ onRequest: async ({ request }) => this.authorize(request) });
  }

  /** Sets `Authorization` on a request (when there is a token and the request has none). */
  async authorize(request: Request): Promise<Request> {
    const token = typeof this.token === 'function' ? await this.token() : this.token;
    if (token && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${token}`);
    return request;
  }

  /** `POST /jobs`: the accepted job (202), or the finished one when `waitSeconds` was given and it finished in time. */
  async submit(job: SubmitJobRequest, options: SubmitOptions = {}): Promise<Job | JobAccepted> {
    return unwrap(this.api.POST('/jobs', { body: job, params: { header: submitHeaders(options) }, signal: options.signal }));
  }

  /**
   * Submits and waits until the job is final: `Prefer: wait` first (up to 30 s), then polling with backoff.
   * Resolves with the final job, whatever its state; `timeoutMs` (default 5 min) rejects with a TimeoutError.
   */
  async run(job: SubmitJobRequest, options: Omit<SubmitOptions, 'waitSeconds'> & WaitOptions = {}): Promise<Job> {
    const timeoutMs = options.timeoutMs ?? 300_000;
    const accepted = await this.submit(job, { ...options, waitSeconds: Math.min(30, Math.floor(timeoutMs / 1000)) });
    return isJob(accepted) && ['completed', 'failed', 'cancelled'].includes(accepted.state) ? accepted : this.waitFor(accepted.id, options);
  }

  /** `POST /substrates/{id}/invoke`; with `waitSeconds`, answered with the finished job when it finishes in time. */
  async invoke(substrateId: string, parameters: InvokeParameters = {}, options: SubmitOptions = {}): Promise<Job | JobAccepted> {
    return unwrap(
      this.api.POST('/substrates/{id}/invoke', {
        params: { path: { id: substrateId }, header: submitHeaders(options) },
        body: { parameters },
        signal: options.signal,
      }),
    );
  }

  /**
   * `POST /jobs/bulk` (SPEC §9): up to 1,000 jobs per request, all or nothing; a longer list goes in chunks of
   * 1,000 in order (each chunk all or nothing). Resolves with the accepted jobs in request order.
   */
  async submitBulk(jobs: BulkJobRequest[], options: { signal?: AbortSignal } = {}): Promise<BulkAccepted['items']> {
    const accepted: BulkAccepted['items'] = [];
    for (let start = 0; start < jobs.length; start += bulkChunkSize) {
      const answer = await this.sendJson<BulkAccepted>(
        'POST',
        '/jobs/bulk',
        { jobs: jobs.slice(start, start + bulkChunkSize) },
        options.signal,
      );
      accepted.push(...answer.items);
    }
    return accepted;
  }

  /** `POST /jobs/{id}/retry` (SPEC §9): a new job with the same type, payload and options; 409 unless failed or cancelled. */
  async retry(id: string, options: { signal?: AbortSignal } = {}): Promise<RetryAccepted> {
    return this.sendJson<RetryAccepted>('POST', `/jobs/${encodeURIComponent(id)}/retry`, undefined, options.signal);
  }

  async getJob(id: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return unwrap(this.api.GET('/jobs/{id}', { params: { path: { id } }, signal: options.signal }));
  }

  /** One page of `GET /jobs` (`{items, next_cursor}`). */
  async listJobs(query: ListJobsQuery = {}) {
    return unwrap(this.api.GET('/jobs', { params: { query } }));
  }

  /** Every job matching `query`, page after page. */
  async *allJobs(query: Omit<ListJobsQuery, 'cursor'> = {}): AsyncGenerator<Job> {
    let cursor: string | undefined;
    do {
      const page = await this.listJobs({ ...query, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** `DELETE /jobs/{id}`: the job, now cancelled; 409 when it was already final. */
  async cancel(id: string): Promise<Job> {
    return unwrap(this.api.DELETE('/jobs/{id}', { params: { path: { id } } }));
  }

  /** Polls `GET /jobs/{id}` with backoff until the job is final. */
  async waitFor(id: string, options: WaitOptions = {}): Promise<Job> {
    return waitForJob((signal) => this.getJob(id, { signal }), options);
  }

  /** The job's Server-Sent Events as an async iterator, reconnecting with `Last-Event-ID`; ends after the final state. */
  events(id: string, options: JobEventsOptions = {}): AsyncGenerator<JobEvent> {
    return jobEvents(this, id, options);
  }

  /** `POST /batches` (in batches of ≤ 10,000), then progress until every item ended, then the failed items. */
  async batch(invocations: BatchInvocation[], options: BatchOptions = {}): Promise<BatchOutcome> {
    return runBatch(this, invocations, options);
  }

  /** A JSON call to a route the generated types do not have yet; problems thrown like every other call. */
  async sendJson<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const request = await this.authorize(
      new Request(this.baseUrl + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      }),
    );
    const response = await this.fetch(request);
    const parsed = await readBody(response);
    if (!response.ok) throw ChrysalisProblem.from(response, parsed);
    return parsed as T;
  }
}

function submitHeaders(options: SubmitOptions): { prefer?: string; 'idempotency-key'?: string } {
  return {
    ...(options.waitSeconds !== undefined && options.waitSeconds > 0
      ? { prefer: `wait=${Math.min(30, Math.floor(options.waitSeconds))}` }
      : {}),
    ...(options.idempotencyKey !== undefined ? { 'idempotency-key': options.idempotencyKey } : {}),
  };
}

/** A finished-or-not job answer (200) rather than an acceptance (202): only full jobs carry `attempts_made`. */
export function isJob(answer: Job | JobAccepted): answer is Job {
  return 'attempts_made' in answer;
}

/** The body as JSON when it is JSON, else as text (undefined when empty). */
export async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
