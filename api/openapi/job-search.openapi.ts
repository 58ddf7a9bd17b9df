import { jobIdParams } from '../routes/jobs.routes.js';
import { searchJobsQuery } from '../routes/job-search.routes.js';
import { documentRoute, json, pageOf, type RouteDocs } from './document-route.js';
import { jobSchema, submitHeaders, submitResponses } from './jobs.openapi.js';

/** job-search.routes.ts: GET /jobs with its filters, and POST /jobs/{id}/retry. */
export const jobSearchDocs: RouteDocs = (registry) => {
  const tag = 'Jobs';
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/jobs',
    summary: "List the caller's jobs, newest first, by type, states, creation time or schedule",
    description: [
      'Every filter narrows. `state` takes one state or a comma-separated list (`state=failed,cancelled`; a repeated',
      '`state=` is read the same way). `created_after` is inclusive, `created_before` exclusive; a window that ends',
      'before it starts answers 422 naming `query.created_before`. `schedule` is the name of one of your schedules:',
      'its runs. Example: `GET /jobs?state=failed&created_after=2026-12-01T00:00:00Z&limit=50`.',
    ].join(' '),
    request: { query: searchJobsQuery },
    responses: { 200: json(pageOf(jobSchema), 'A page of jobs') },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/jobs/:id/retry',
    summary: 'Retry a failed or cancelled job as a new job',
    description: [
      'A new job with the same type, payload, priority, attempts and `webhook_url` (not `delay_ms`: it runs now),',
      'whose `retry_of` is the original; the original is unchanged. It is submitted like `POST /jobs`: the rate',
      'limit, the queued-job cap, `Idempotency-Key` (same key: the same retry) and `Prefer: wait` apply. Without',
      'an `Idempotency-Key`, retries of the same job asked for together (a double click, a burst of requests:',
      'each asked while another is still being answered, or before the job’s newest retry ended) make one retry,',
      'and each answers with it (202, the same id), even if it has failed by the time they are answered; a retry',
      'asked for after the newest retry ended, once the requests before it were answered, is a new job. Any other',
      'state than `failed` or `cancelled` answers 409; a job on a substrate deleted since answers 404.',
    ].join(' '),
    request: { params: jobIdParams, headers: submitHeaders },
    responses: submitResponses,
    problems: [404, 409, 422],
  });
};
