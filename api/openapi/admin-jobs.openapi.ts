import { z } from 'zod';
import { customerParams } from '../routes/admin.routes.js';
import {
  adminCancelBody,
  adminJobsQuery,
  adminRetryBody,
  auditQuery,
  failureGroupScan,
  failureGroupsQuery,
  maxBulkJobs,
} from '../routes/admin-jobs.routes.js';
import { documentRoute, ex, exampleOf, json, jsonBody, pageOf, timestamp, type RouteDocs } from './document-route.js';
import { jobSchema } from './jobs.openapi.js';

const { result: _result, ...completedJob } = exampleOf(jobSchema) as Record<string, unknown>;
const failedJobExample = {
  ...completedJob,
  state: 'failed',
  attempts_made: 3,
  error: 'evaluation timed out after 5000 ms',
  customer_id: ex.customerId,
};
export const adminJobSchema = jobSchema
  .extend({ customer_id: z.uuid().describe('Whose job it is') })
  .meta({ id: 'AdminJob', example: failedJobExample });

const bulkOutcome = (verb: 'retried' | 'cancelled', ids: string) =>
  z.object({
    dry_run: z.boolean(),
    matched: z.int().describe('Jobs that match: a dry run counts up to 100,000; a real run, those it acted on (at most `limit`)'),
    [verb]: z.int(),
    job_ids: z.array(z.uuid()).describe(ids),
    sample: z.array(adminJobSchema).optional().describe('A dry run: the first 20 matching jobs, newest first'),
  });

const auditEntrySchema = z
  .object({
    id: z.string().describe('Monotonic; newest first'),
    at: timestamp,
    admin_user_id: z.uuid().nullable().describe('The admin who acted (null for an admin API key)'),
    action: z
      .string()
      .describe(
        'customer.credit, customer.pause, customer.resume, jobs.view, jobs.failure-groups.view, jobs.retry, jobs.retry.dry-run, jobs.cancel, jobs.cancel.dry-run, job.view, job.deliveries.view, job.retry, batch.view',
      ),
    customer_id: z.uuid().nullable(),
    details: z.unknown().describe('The filters and counts of the action'),
  })
  .meta({
    id: 'AdminAuditEntry',
    example: {
      id: '1042',
      at: ex.at,
      admin_user_id: ex.adminId,
      action: 'jobs.retry.dry-run',
      customer_id: ex.customerId,
      details: { filters: { state: ['failed'], error_contains: 'timeout' }, matched: 1 },
    },
  });

const failureGroupSchema = z
  .object({
    error: z
      .string()
      .nullable()
      .describe(
        'The first 200 characters of the error these jobs failed with (null: failed without error text); give it to POST /admin/jobs/retry as `error_contains`',
      ),
    jobs: z.int().describe('Failed jobs in the group'),
    not_retried: z.int().describe('Of those, the jobs no retry names yet: what a bulk retry would retry'),
    customers: z.int().describe('How many customers these jobs belong to'),
    customer_ids: z.array(z.uuid()).describe('The first five of those customers, by id'),
    types: z.array(z.string()).describe('The job types in the group'),
    first_failed_at: timestamp,
    last_failed_at: timestamp,
  })
  .meta({
    id: 'AdminFailureGroup',
    example: {
      error: 'evaluation timed out after 5000 ms',
      jobs: 42,
      not_retried: 40,
      customers: 1,
      customer_ids: [ex.customerId],
      types: ['invoke'],
      first_failed_at: ex.at,
      last_failed_at: ex.at,
    },
  });
const failureGroupsSchema = z
  .object({
    items: z.array(failureGroupSchema).describe('The biggest groups first'),
    scanned: z.int().describe(`Failed jobs read: the newest ${failureGroupScan.toLocaleString('en-US')} that match at most`),
    complete: z
      .boolean()
      .describe(`False when ${failureGroupScan.toLocaleString('en-US')} were read: older failures exist that the groups do not count`),
    as_of: timestamp,
  })
  .meta({
    id: 'AdminFailureGroups',
    example: { items: [exampleOf(failureGroupSchema)], scanned: 42, complete: true, as_of: ex.at },
  });

const pauseSchema = z.object({ customer_id: z.uuid(), paused: z.boolean(), paused_at: timestamp.nullable() }).meta({ id: 'CustomerPause' });

/** admin-jobs.routes.ts: the operators' job search, bulk retry and cancel, pauses and the audit log. */
export const adminJobsDocs: RouteDocs = (registry) => {
  const tag = 'Admin';
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/jobs',
    summary: "Every customer's jobs, newest first, by customer, type, states, time and error text",
    description:
      'The filters of GET /jobs plus `customer_id` and `error_contains` (case-insensitive, at least 3 characters; a trigram index serves it). Each page read is written to the audit log. Example: `GET /admin/jobs?state=failed&error_contains=timeout&customer_id=…`.',
    request: { query: adminJobsQuery },
    responses: { 200: json(pageOf(adminJobSchema), 'A page of jobs') },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/jobs/failure-groups',
    summary: 'Failed jobs grouped by error, the biggest groups first',
    description: `The newest ${failureGroupScan.toLocaleString('en-US')} failed jobs that match (by customer, type and creation time), grouped by their error's first 200 characters, each group with its count, how many have no retry yet, and whose they are. A group's \`error\` as \`error_contains\` of POST /admin/jobs/retry retries that group (with the same \`customer_id\` and \`type\`; a dry run first shows the count). Written to the audit log as a cross-customer view.`,
    request: { query: failureGroupsQuery },
    responses: { 200: json(failureGroupsSchema, 'The groups') },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'post',
    path: '/admin/jobs/retry',
    summary: 'Retry failed jobs that match (dry run first)',
    description: `Failed jobs that match and have no retry yet, newest first, at most \`limit\` (default 1,000, at most ${maxBulkJobs.toLocaleString('en-US')}: 422 past it), each submitted again like POST /jobs/{id}/retry (its customer's admission cap applies), in rounds of 500. Running it twice, even concurrently, retries nothing new. \`dry_run: true\` changes nothing and answers the count and a sample. Written to the audit log.`,
    request: { body: jsonBody(adminRetryBody) },
    responses: {
      200: json(bulkOutcome('retried', 'The new jobs (a real run)'), 'What was (or would be) retried', undefined, {
        dry_run: true,
        matched: 1,
        retried: 0,
        job_ids: [],
        sample: [failedJobExample],
      }),
    },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'post',
    path: '/admin/jobs/cancel',
    summary: 'Cancel unfinished jobs that match (dry run first)',
    description: `Queued, delayed or active jobs (\`state\` narrows) that match, at most \`limit\` (at most ${maxBulkJobs.toLocaleString('en-US')}), cancelled as DELETE /jobs/{id} cancels one. Written to the audit log.`,
    request: { body: jsonBody(adminCancelBody) },
    responses: {
      200: json(bulkOutcome('cancelled', 'The cancelled jobs (a real run)'), 'What was (or would be) cancelled', undefined, {
        dry_run: false,
        matched: 2,
        cancelled: 2,
        job_ids: [ex.jobId, ex.jobId2],
      }),
    },
    problems: [422],
  });
  for (const action of ['pause', 'resume'] as const) {
    documentRoute(registry, {
      tag,
      auth: 'admin',
      method: 'post',
      path: `/admin/customers/:id/${action}`,
      summary: action === 'pause' ? "Pause (quarantine) a customer's work" : "Resume a paused customer's work",
      description:
        action === 'pause'
          ? 'Its jobs are kept and still accepted, but workers do not start them (they stay `queued`) until resumed; within 2 s. Written to the audit log.'
          : 'Its set-aside jobs are moved back to waiting at once. Written to the audit log.',
      request: { params: customerParams },
      responses: {
        200: json(
          pauseSchema,
          action === 'pause' ? 'Paused' : 'Resumed',
          undefined,
          action === 'pause'
            ? { customer_id: ex.customerId, paused: true, paused_at: ex.at }
            : { customer_id: ex.customerId, paused: false, paused_at: null },
        ),
      },
      problems: [404],
    });
  }
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/audit',
    summary: 'The admin audit log, newest first',
    description: 'Credits, retries, cancels (and their dry runs), pauses, resumes and cross-customer job views, by customer or action.',
    request: { query: auditQuery },
    responses: { 200: json(pageOf(auditEntrySchema), 'A page of entries') },
  });
};
