import { z } from 'zod';
import type { Config } from '../config.js';
import { atMostItems, isLimitIssue } from '../jobs/input-limits.js';
import { getJobDefinition } from '../jobs/registry.js';
import type { ListedJob } from '../queue/submit-jobs-bulk.js';
import type { Principal } from './auth/principal.js';
import { describeFieldErrors, ProblemError, shortKey, type FieldError } from './problems.js';
import { submitJobBody, substrateOf } from './job-body.js';
import { assertWebhookTarget } from './webhook-target.js';
import { requestHashOf } from './request-hash.js';

/** Most jobs one `POST /jobs/bulk` takes (SPEC §9); more is a 422. */
export const maxBulkJobs = 1000;

const idempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1–255 visible ASCII characters')
  .describe('Names this job for 24 h, as `Idempotency-Key` does for `POST /jobs`: the same key and job again answer with the job it named');

/** One job of a bulk submit: a `POST /jobs` body and its own idempotency key. */
export const bulkJobItem = submitJobBody.extend({ idempotency_key: idempotencyKey.optional() });

export const bulkSubmitBody = z.strictObject({
  jobs: atMostItems(z.array(z.unknown()).min(1, 'must hold at least 1 job'), maxBulkJobs, 'jobs').describe(
    `1 to ${maxBulkJobs.toLocaleString('en-US')} jobs, each a \`POST /jobs\` body plus an optional \`idempotency_key\``,
  ),
});

/**
 * `jobs[3].payload.substrate_id`: the field of a bulk submit as SPEC §9 names it — the item by its index
 * in brackets, then the path inside it.
 */
export function bulkField(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>(
    (field, key) => (typeof key === 'number' ? `${field}[${key}]` : field === '' ? String(key) : `${field}.${String(key)}`),
    '',
  );
}

interface Issue extends FieldError {
  /** A limit exceeded (422) rather than malformed input (400). */
  limit: boolean;
}

function issuesOf(error: z.ZodError, prefix: PropertyKey[]): Issue[] {
  return error.issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    const limit = isLimitIssue(issue);
    if (issue.code !== 'unrecognized_keys') return [{ field: bulkField(path), message: issue.message, limit }];
    // One error per unknown key, each cut short, as fieldErrors does for every other route: 90,000 unknown keys
    // answer the first 100 and a count (ProblemError caps the list), not one field naming them all.
    return issue.keys.map((key) => ({ field: bulkField([...path, shortKey(key)]), message: 'unknown field', limit }));
  });
}

/**
 * 422 when every issue is a limit exceeded, else 400 — as for every other route (api/validate.ts). `total` is
 * how many jobs the request held, null when `jobs` is not a list.
 */
function problemOf(issues: Issue[], total: number | null): ProblemError {
  const errors = issues.map(({ field, message }) => ({ field, message }));
  const listed = describeFieldErrors(errors);
  const nothingSubmitted = total === null ? 'no job was submitted' : `none of its ${total.toLocaleString('en-US')} jobs was submitted`;
  if (issues.every((issue) => issue.limit))
    return new ProblemError('unprocessable', `the bulk exceeds a limit: ${listed}; ${nothingSubmitted}`, { errors });
  return new ProblemError('validation', `invalid bulk submit: ${listed}; ${nothingSubmitted}`, { errors });
}

/** How many jobs a bulk body holds, before it is validated (a refused envelope still says how many it was): null when `jobs` is no list. */
function jobCountOf(body: unknown): number | null {
  const jobs = typeof body === 'object' && body !== null ? (body as { jobs?: unknown }).jobs : undefined;
  return Array.isArray(jobs) ? jobs.length : null;
}

/** The answer to a bulk sent with an `Idempotency-Key` header: each of its jobs takes its own key. */
const idempotencyHeaderProblem = () =>
  new ProblemError('validation', "POST /jobs/bulk takes each job's own idempotency_key, not an Idempotency-Key header", {
    errors: [{ field: 'header.idempotency-key', message: 'use jobs[i].idempotency_key' }],
  });

/** What a bulk submit's check needs of its request besides the body. */
export interface BulkSubmitRequest {
  /** The caller's role: admin-only job types are refused (403) for anyone else. */
  role: Principal['role'];
  /** Whether the request carried an `Idempotency-Key` header, which a bulk refuses (400). */
  idempotencyHeader: boolean;
}

/**
 * One job of a checked bulk submit: a ListedJob whose job type is named rather than given, so it crosses
 * from the batch checker's thread (a definition holds functions, which do not).
 */
export type CheckedBulkJob = Omit<ListedJob, 'definition'> & { type: string };

/**
 * Validates a bulk submit whole, as `POST /jobs` validates one job, and answers every bad item at once:
 * each field named `jobs[i]…`. A request with an `Idempotency-Key` header is refused first (400), admin-only
 * job types for other callers (403). Returns the jobs to submit, in request order, with their idempotency
 * keys hashed as `POST /jobs` hashes its body, so an item and the same job sent alone with the same key name
 * one job. Pure and synchronous: it runs in the batch checker's thread for a large body (substrate-batch/).
 */
export function checkBulkSubmit(request: BulkSubmitRequest, body: unknown): CheckedBulkJob[] {
  if (request.idempotencyHeader) throw idempotencyHeaderProblem();
  const envelope = bulkSubmitBody.safeParse(body);
  if (!envelope.success) throw problemOf(issuesOf(envelope.error, []), jobCountOf(body));
  const items = envelope.data.jobs;
  const issues: Issue[] = [];
  const parsed: Array<CheckedBulkJob | null> = items.map((raw, index) => {
    const item = bulkJobItem.safeParse(raw);
    if (!item.success) {
      issues.push(...issuesOf(item.error, ['jobs', index]));
      return null;
    }
    const { idempotency_key: key, ...job } = item.data;
    const definition = getJobDefinition(job.type);
    if (!definition) {
      issues.push({ field: bulkField(['jobs', index, 'type']), message: `no job type ${job.type}`, limit: false });
      return null;
    }
    if (definition.adminOnly && request.role !== 'admin')
      throw new ProblemError('forbidden', `only administrators may submit ${job.type} jobs (jobs[${index}].type); no job was submitted`, {
        errors: [{ field: bulkField(['jobs', index, 'type']), message: 'admin-only job type' }],
      });
    const payload = definition.payload.safeParse(job.payload);
    if (!payload.success) {
      issues.push(...issuesOf(payload.error, ['jobs', index, 'payload']));
      return null;
    }
    // As POST /jobs hashes `POST /jobs <body>`: the same job and key, alone or in a bulk, name one job.
    const { idempotency_key: _key, ...sentAlone } = raw as Record<string, unknown>;
    return {
      type: definition.name,
      payload: payload.data,
      priority: job.priority,
      delayMs: job.delay_ms,
      attempts: job.attempts,
      webhookUrl: job.webhook_url,
      idempotencyKey: key ?? null,
      requestHash: key ? requestHashOf('POST', '/jobs', sentAlone) : null,
      requireSubstrateId: substrateOf(payload.data),
    };
  });
  if (issues.length > 0) throw problemOf(issues, items.length);
  return parsed as CheckedBulkJob[];
}

/**
 * The checked jobs as `submitJobList` takes them, each with its job type's definition, once every distinct
 * `webhook_url` is checked (resolved, on the event loop: it waits on DNS, not the CPU).
 */
export async function listedJobs(config: Config, checked: CheckedBulkJob[]): Promise<ListedJob[]> {
  const jobs = checked.map(({ type, ...job }): ListedJob => ({ ...job, definition: getJobDefinition(type)! }));
  // Each distinct webhook URL is resolved and checked once, however many jobs name it.
  const urls = new Map<string, number>();
  jobs.forEach((job, index) => {
    if (job.webhookUrl && !urls.has(job.webhookUrl)) urls.set(job.webhookUrl, index);
  });
  for (const [url, index] of urls) await assertWebhookTarget(config, url, bulkField(['jobs', index, 'webhook_url']));
  return jobs;
}
