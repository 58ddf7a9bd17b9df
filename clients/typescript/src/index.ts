export {
  ChrysalisClient,
  apiBaseUrl,
  bulkChunkSize,
  isJob,
  readBody,
  unwrap,
  type ChrysalisClientOptions,
  type SubmitOptions,
} from './client.js';
export { ChrysalisProblem, parseRetryAfter, type FieldError } from './problem.js';
export { TimeoutError, type WaitOptions } from './wait.js';
export type { JobEvent, JobEventsOptions } from './events.js';
export { maxBatchSize, type BatchOptions, type BatchOutcome, type BatchProgress, type FailedBatchItem } from './batches.js';
export { verifyWebhook, WebhookVerificationError, type WebhookEvent, type WebhookJob } from './webhooks.js';
export type { RateLimitOptions } from './rate-limited-fetch.js';
export * from './types.js';
export type { components, paths } from './schema.js';
