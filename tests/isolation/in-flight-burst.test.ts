import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeName } from '../../api/concurrency-limits.js';
import { LeaseSemaphores } from '../../lib/lease-semaphore.js';
import { createRedis } from '../../lib/redis.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * A customer's burst of concurrent requests past its in-flight cap is refused by the API process itself
 * once the process holds every place: no Redis script per refused request (an enterprise customer's 3,000
 * concurrent GET /jobs had cost 3,000 scripts a wave). No workers run here, so `Prefer: wait` invokes hold
 * their places.
 */
const suite = useTestApp({ users: 2, env: { TIER_MAX_IN_FLIGHT: 'starter=100000,pro=100000,enterprise=3' } });
let enterprise: TestUser;
let other: TestUser;
let redis: ReturnType<typeof createRedis>;

type Counted = { leaseAcquire: (...args: unknown[]) => Promise<number> };

/** Counts the lease scripts `client` runs while `work` runs. */
async function leaseScripts<T>(client: unknown, work: () => Promise<T>): Promise<{ result: T; scripts: number }> {
  const counted = client as Counted;
  const original = counted.leaseAcquire;
  let scripts = 0;
  // ioredis's auto-pipeline calls the client's script function again, on its pipeline: count the client's calls.
  counted.leaseAcquire = function (this: unknown, ...args: unknown[]) {
    if (this === counted) scripts++;
    return original.apply(this, args);
  };
  try {
    return { result: await work(), scripts };
  } finally {
    counted.leaseAcquire = original;
  }
}

beforeAll(async () => {
  [enterprise, other] = suite.users as [TestUser, TestUser];
  redis = createRedis(suite.app.config.redis);
  const me = await suite.request('GET', '/api/v1/auth/me', { token: enterprise.accessToken });
  await suite.app.sql(`update service_instances set tier = 'enterprise' where customer_id = $1 and service_type = 'compute'`, [
    me.body.customer_id,
  ]);
  await suite.app.deps.principals.invalidateCustomer(me.body.customer_id);
});

afterAll(async () => {
  await redis?.quit();
});

describe('a burst past the in-flight cap', () => {
  it('takes at most `limit` places in Redis for concurrent takes in one process and refuses the rest at once', async () => {
    const semaphores = new LeaseSemaphores(redis, `${suite.app.config.queuePrefix}:burst-test`);
    try {
      const { result, scripts } = await leaseScripts(redis, () =>
        Promise.all(Array.from({ length: 50 }, () => semaphores.acquire('burst', 3))),
      );
      expect(result.filter((taken) => 'release' in taken)).toHaveLength(3);
      expect(result.filter((taken) => 'full' in taken)).toHaveLength(47);
      expect(scripts).toBe(3);
      for (const taken of result) if ('release' in taken) taken.release();
      expect('release' in (await semaphores.acquire('burst', 3))).toBe(true);
    } finally {
      semaphores.close();
    }
  });

  it('hands a place just given back to the next take in the process, with no Redis script, and other processes still see it taken', async () => {
    const name = `reuse-${Date.now()}`;
    const here = new LeaseSemaphores(redis, `${suite.app.config.queuePrefix}:burst-test`);
    const elsewhere = new LeaseSemaphores(redis, `${suite.app.config.queuePrefix}:burst-test`);
    try {
      const first = await here.acquire(name, 1);
      if (!('release' in first)) throw new Error('the first take must get the place');
      first.release();
      const { result: again, scripts } = await leaseScripts(redis, () => here.acquire(name, 1));
      expect('release' in again).toBe(true);
      expect(scripts).toBe(0);
      expect(await elsewhere.acquire(name, 1)).toEqual({ full: 1 });
      if ('release' in again) again.release();
      // Not taken over within its moment: removed from Redis, so the other process gets the place.
      await waitFor(async () => (await here.count(name)) === 0, 2000, 5);
      expect('release' in (await elsewhere.acquire(name, 1))).toBe(true);
    } finally {
      here.close();
      elsewhere.close();
    }
  });

  it('keeps a place given back as a spare for the next take in the process for a while, not only the same moment', async () => {
    const name = `spare-${Date.now()}`;
    const here = new LeaseSemaphores(redis, `${suite.app.config.queuePrefix}:burst-test`);
    try {
      const first = await here.acquire(name, 2);
      if (!('release' in first)) throw new Error('the first take must get the place');
      first.release();
      // A busy customer's next request arrives some milliseconds after its last answer (the old 5 ms flush had
      // removed the spare by then, and the take cost a script).
      await new Promise((resolve) => setTimeout(resolve, 20));
      const { result: again, scripts } = await leaseScripts(redis, () => here.acquire(name, 2));
      expect('release' in again).toBe(true);
      expect(scripts).toBe(0);
      expect(here.takeHere(name, 2)).toBeUndefined();
      expect(await here.count(name)).toBe(1);
      if ('release' in again) again.release();
    } finally {
      here.close();
    }
    // Closing removes the spares at once (on the same connection, so before this count).
    expect(await here.count(name)).toBe(0);
  });

  it("refuses an enterprise customer's 300 concurrent GET /jobs at its cap with 429, no Redis script each, while another customer gets 200", async () => {
    const created = await suite.request('POST', '/api/v1/substrates', {
      token: enterprise.accessToken,
      body: { expression_type: 'expression', expression: 'x * y' },
    });
    const me = await suite.request('GET', '/api/v1/auth/me', { token: enterprise.accessToken });
    // Held for 15 s: a loaded machine (CI's) took over 5 s to answer the burst, and places given back by waits
    // that ran out let its last requests in (200).
    const held = [1, 2, 3].map((x) =>
      suite.request('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
        token: enterprise.accessToken,
        headers: { prefer: 'wait=15' },
        body: { parameters: { x, y: 1 } },
      }),
    );
    await waitFor(async () => (await suite.app.deps.leases.count(placeName('in-flight', me.body.customer_id))) === 3, 10_000);
    const { result, scripts } = await leaseScripts(suite.app.deps.redis, () =>
      Promise.all([
        Promise.all(Array.from({ length: 300 }, () => suite.request('GET', '/api/v1/jobs?limit=100', { token: enterprise.accessToken }))),
        suite.request('GET', '/api/v1/jobs', { token: other.accessToken }),
      ]),
    );
    const [burst, others] = result;
    expect(others.status).toBe(200);
    expect(new Set(burst.map((answer) => answer.status))).toEqual(new Set([429]));
    expectProblem(burst[0]!, 429, 'rate-limited');
    expect(burst[0]!.headers.get('retry-after')).toBe('1');
    expect(scripts).toBe(0);
    expect((await Promise.all(held)).map((answer) => answer.status)).toEqual([202, 202, 202]);
  }, 60_000);
});
