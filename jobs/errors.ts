/** The job cannot succeed however often it runs (bad input, a failing expression): fail now, no retry. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/** A dependency is briefly unavailable: retry with the queue's backoff. */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
}
