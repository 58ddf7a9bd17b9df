import type { JobOutcome } from '../jobs/define-job.js';

/**
 * The worker time fair sharing charges for a finished job: the pool's measured task time (`workMs`) when the
 * job ran tasks on a Piscina thread, else — `workMs` 0: its processor did its work on the worker's own
 * thread — the processor's wall time, so a customer whose jobs use no pool is still charged for them.
 */
export function fairChargeMs(outcome: Pick<JobOutcome, 'workMs' | 'durationMs'>): number {
  return outcome.workMs > 0 ? outcome.workMs : outcome.durationMs;
}
