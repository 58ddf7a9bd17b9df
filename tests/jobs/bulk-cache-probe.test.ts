import { describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { submitJobList } from '../../queue/submit-jobs-bulk.js';

/**
 * A bulk submit looks its invocations up in the invocation cache so their workers need not (`cacheMissed`), but a
 * lookup hashes the parameters on the API's event loop: for large ones the worker looks itself. A 15 MB bulk of
 * 15 KB parameters held the loop 78–132 ms a request for those hashes; without them 38–62 ms.
 */
const suite = useTestApp({ users: 1, env: { FAIR_SHARING: 'false', JOB_BUNDLE_SIZE: '1' } });

describe('a bulk submit and the invocation cache', () => {
  it('marks a cache miss for small parameters only; large ones are left for the worker to look up', async () => {
    const [user] = suite.users as [TestUser];
    const substrateId = await createExpressionSubstrate(suite.request, user.accessToken, 'x + 1');
    const me = await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken });
    const { deps } = suite.app;
    const invoke = (parameters: Record<string, unknown>) => ({
      definition: getJobDefinition('invoke')!,
      payload: { substrate_id: substrateId, parameters },
      requireSubstrateId: substrateId,
      idempotencyKey: null,
      requestHash: null,
    });
    const outcome = await submitJobList(
      { em: deps.orm.em, queues: deps.queues, logger: deps.logger, cache: deps.cache, fair: null },
      me.body.customer_id as string,
      [invoke({ x: 1 }), invoke({ x: 2, pad: 'p'.repeat(2000) })],
    );
    expect(outcome.kind).toBe('created');
    if (outcome.kind !== 'created') return;
    const hints = await Promise.all(
      outcome.jobs.map(async ({ job }) => (await deps.queues.forJob('invoke', job.id).getJob(job.id))?.data.cacheMissed),
    );
    expect(hints).toEqual([true, undefined]);
  });
});
