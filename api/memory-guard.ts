import type { ApiDeps } from './deps.js';
import { ProblemError } from './problems.js';

/** Seconds a client refused by the Redis memory guard is asked to wait. */
export const memoryGuardRetryAfterSeconds = 30;

/**
 * Refuses new work (a job, a batch, a schedule) with 503 problem+json and `Retry-After` while Redis is above
 * REDIS_MEMORY_GUARD of its memory limit. Reads, cancels and deletes still pass: they free memory.
 */
export function refuseWhenRedisFull(deps: Pick<ApiDeps, 'memoryGuard'>): void {
  const over = deps.memoryGuard.overLimit();
  if (!over) return;
  throw new ProblemError(
    'unavailable',
    `the platform is not accepting new work: Redis memory is above ${Math.round(deps.memoryGuard.share * 100)} % of its limit (REDIS_MEMORY_GUARD); try again later`,
    { headers: { 'Retry-After': String(memoryGuardRetryAfterSeconds) }, reason: 'redis_memory_guard' },
  );
}
