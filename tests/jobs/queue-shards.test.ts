import { beforeAll, describe, expect, it } from 'vitest';
import { getJobDefinition } from '../../jobs/registry.js';
import { queueName, shardOf } from '../../queue/queue-names.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import type { TestUser } from '../helpers/accounts.js';
import { jobCounts } from '../helpers/queues.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

// No workers: the jobs stay where the producer put them. Every job carried alone (no bundles): each is a BullMQ
// job on its own id's shard (a bundle lives on its members' shard: tests/jobs/bundles.test.ts).
// FIFO: the test counts BullMQ's jobs per shard (fair sharing holds those beyond each shard's window in lanes).
const suite = useTestApp({ users: 1, env: { QUEUE_SHARDS: '16', JOB_BUNDLE_SIZE: '1', FAIR_SHARING: 'false' } });
let alice: TestUser;
let substrateId: string;
let customerId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'x * y');
  customerId = (await suite.request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
});

/** Which `{invoke.N}` queues hold a BullMQ job with this id, read from Redis directly. */
async function shardsHolding(id: string): Promise<number[]> {
  const { redis, queues } = suite.app.deps;
  const held = await Promise.all(
    queues.ofType('invoke').map(async (_, shard) => (await redis.exists(`${queues.prefix}:${queueName('invoke', shard)}:${id}`)) === 1),
  );
  return held.flatMap((isHeld, shard) => (isHeld ? [shard] : []));
}

describe('queue shards', () => {
  it('puts a submitted job on the shard its id names, under the plain prefix and that shard’s own hash tag', async () => {
    const submitted = await suite.request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 2 } } },
    });
    expect(submitted.status).toBe(202);
    const id: string = submitted.body.id;
    // The add follows the 202 (queue/pending-enqueues.ts): read Redis once it is in.
    await suite.app.deps.pendingEnqueues.settled(id);
    expect(await shardsHolding(id)).toEqual([shardOf(id, 16)]);
    expect(suite.app.deps.queues.forJob('invoke', id).name).toBe(`{invoke.${shardOf(id, 16)}}`);
    expect(await suite.app.deps.redis.exists(`${suite.app.config.queuePrefix}:{invoke.${shardOf(id, 16)}}:wait`)).toBe(1);

    // Cancel finds it on that shard and takes it off.
    expect((await suite.request('DELETE', `/api/v1/jobs/${id}`, { token: alice.accessToken })).status).toBe(200);
    expect(await shardsHolding(id)).toEqual([]);
  });

  it("spreads one customer's bulk over all 16 shards, each job on its own id's shard", async () => {
    const invoke = getJobDefinition('invoke')!;
    const { deps } = suite.app;
    const ids = await submitJobsBulk(
      { em: deps.orm.em, queues: deps.queues, logger: deps.logger, cache: deps.cache, fair: deps.fair },
      customerId,
      invoke,
      Array.from({ length: 640 }, (_, x) => ({ substrate_id: substrateId, parameters: { x, y: 3 } })),
    );
    const perShard = await Promise.all(deps.queues.ofType('invoke').map((queue) => queue.getWaitingCount()));
    expect(perShard).toHaveLength(16);
    // 40 expected per shard; the binomial spread (sd ≈ 6) keeps every shard well inside 10–80.
    for (const count of perShard) {
      expect(count).toBeGreaterThan(10);
      expect(count).toBeLessThan(80);
    }
    expect((await jobCounts(deps.queues, 'invoke', 'waiting')).waiting).toBe(640);
    for (const id of ids.slice(0, 40)) expect((await deps.queues.forJob('invoke', id).getJob(id))?.id).toBe(id);
  });

  it('keeps the back-office types on one queue each', () => {
    expect(suite.app.deps.queues.ofType('metering').map((queue) => queue.name)).toEqual(['{metering}']);
    expect(suite.app.deps.queues.ofType('divide')).toHaveLength(16);
    expect(suite.app.deps.queues.ofType('batch')).toHaveLength(16);
  });
});
