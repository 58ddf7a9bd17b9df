import { SubstrateDefinitionCache } from '../db/substrate-definitions.js';
import { systemCustomerId } from '../queue/schedules/platform-schedules.js';
import type { JobContext } from '../jobs/context.js';

/**
 * A processor context outside a worker, as the worker would build it for a platform job (the system customer's,
 * first attempt, no Piscina pool): tests and benches run a job's `process` directly with it.
 */
export function standaloneJobContext(
  deps: Pick<JobContext, 'logger' | 'em' | 'redis' | 'config' | 'cache'>,
  overrides: Partial<JobContext> = {},
): JobContext {
  return {
    jobId: '00000000-0000-4000-8000-000000000000',
    customerId: systemCustomerId,
    attemptsMade: 0,
    cacheMissed: false,
    substrates: new SubstrateDefinitionCache(),
    runTask: () => Promise.reject(new Error('no Piscina pool outside a worker')),
    workMs: 0,
    signal: new AbortController().signal,
    progress: async () => undefined,
    ...deps,
    ...overrides,
  };
}
