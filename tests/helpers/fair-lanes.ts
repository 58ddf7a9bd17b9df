import type { Redis } from 'ioredis';
import { getJobDefinition } from '../../jobs/registry.js';
import { fairShareKey } from '../../queue/fair-share/fair-share.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { registerUser } from './accounts.js';
import { httpClient } from './http.js';
import { createExpressionSubstrate } from './substrates.js';
import type { TestApp } from './test-app.js';

type LaneReader = Pick<Redis, 'lrange' | 'zrange'>;

/**
 * The ids a customer's lane in a shard holds, in release order: its list (entries carry packed hint flags
 * after the id: `<id>!m`), then its prioritized zset.
 */
export async function heldIds(redis: LaneReader, queueKey: string, customerId: string): Promise<string[]> {
  const lane = `${fairShareKey(queueKey, 'lane')}${customerId}`;
  const listed = await redis.lrange(lane, 0, -1);
  return [...listed.map((entry) => entry.split(/[!*]/)[0]!), ...(await redis.zrange(`${lane}:p`, 0, '-1'))];
}

/**
 * A new customer with an `x * 3` substrate and `jobs` invokes of it submitted in bulk (`submitJobsBulk`, as the
 * bench's producers do): with no worker running yet, what its shards do not release waits in its lanes.
 */
export async function bulkBacklog(app: TestApp, jobs: number) {
  const request = httpClient(app.baseUrl);
  const user = await registerUser(request);
  const customerId = (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
  const substrate = await createExpressionSubstrate(request, user.accessToken, 'x * 3');
  const deps = app.deps;
  const ids = await submitJobsBulk(
    { em: deps.orm.em, queues: deps.queues, fair: deps.fair, logger: deps.logger, cache: deps.cache },
    customerId,
    getJobDefinition('invoke')!,
    Array.from({ length: jobs }, (_, x) => ({ substrate_id: substrate, parameters: { x } })),
  );
  return { request, token: user.accessToken, customerId, substrate, ids };
}
