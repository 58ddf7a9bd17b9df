import type { components, paths } from './schema.js';

type Schemas = components['schemas'];

/** A job as `GET /jobs/{id}` answers it. */
export type Job = Schemas['Job'];
/** The 202 answer of a submit: the job accepted, not yet finished. */
export type JobAccepted = Schemas['JobAccepted'];
export type JobState = Job['state'];
export type JobType = SubmitJobRequest['type'];
export type Batch = Schemas['Batch'];
export type BatchItem = Schemas['BatchItem'];
export type Problem = Schemas['Problem'];
export type Schedule = Schemas['Schedule'];
export type Substrate = Schemas['Substrate'];

/** The body of `POST /jobs`. */
export type SubmitJobRequest = paths['/jobs']['post']['requestBody']['content']['application/json'];
/** One invocation of `POST /batches`. */
export type BatchInvocation = paths['/batches']['post']['requestBody']['content']['application/json']['invocations'][number];
export type InvokeParameters = NonNullable<
  paths['/substrates/{id}/invoke']['post']['requestBody']
>['content']['application/json']['parameters'];
export type ListJobsQuery = NonNullable<paths['/jobs']['get']['parameters']['query']>;

/** Completed, failed and cancelled jobs never change again. */
export const finalJobStates: readonly JobState[] = ['completed', 'failed', 'cancelled'];
export const isFinal = (state: JobState): boolean => finalJobStates.includes(state);

// POST /jobs/bulk is in SPEC §9 but not yet in the API's OpenAPI document, so its types are written from the
// contract; POST /jobs/{id}/retry is documented, and its answer is the generated JobAccepted (with `retry_of`).

/** One item of `POST /jobs/bulk` (SPEC §9): a `POST /jobs` body plus its own idempotency key. */
export type BulkJobRequest = SubmitJobRequest & { idempotency_key?: string };
/** The 202 answer of `POST /jobs/bulk`: the accepted jobs in request order. */
export interface BulkAccepted {
  items: JobAccepted[];
}
/** The 202 answer of `POST /jobs/{id}/retry`: a new job whose `retry_of` is the original. */
export type RetryAccepted = JobAccepted & { retry_of?: string };
