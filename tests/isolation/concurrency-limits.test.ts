import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeName } from '../../api/concurrency-limits.js';
import { LeaseSemaphores } from '../../lib/lease-semaphore.js';
import { createRedis } from '../../lib/redis.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { openSse } from '../helpers/sse.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * Per-customer limits on requests in flight and open event streams, by tier, shared by every API process
 * through Redis leases. No workers run here, so `Prefer: wait` invokes hold their requests open.
 */
const suite = useTestApp({
  users: 2,
  env: { TIER_MAX_IN_FLIGHT: 'starter=2,pro=50,enterprise=3', TIER_MAX_STREAMS: 'starter=1,pro=5,enterprise=5' },
});
let attacker: TestUser;
let victim: TestUser;
let substrateOf: Map<string, string>;

beforeAll(async () => {
  [attacker, victim] = suite.users as [TestUser, TestUser];
  substrateOf = new Map();
  for (const user of [attacker, victim]) {
    const created = await suite.request('POST', '/api/v1/substrates', {
      token: user.accessToken,
      body: { expression_type: 'expression', expression: 'x * y' },
    });
    substrateOf.set(user.email, created.body.substrate_id);
  }
});

/** An invoke that waits `seconds` for a result no worker will produce: a request held in flight. */
const heldInvoke = (user: TestUser, x: number, seconds = 4) =>
  suite.request('POST', `/api/v1/substrates/${substrateOf.get(user.email)}/invoke`, {
    token: user.accessToken,
    headers: { prefer: `wait=${seconds}` },
    body: { parameters: { x, y: 1 } },
  });

async function setTier(user: TestUser, tier: string) {
  const me = await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken });
  await suite.app.sql(`update service_instances set tier = $1 where customer_id = $2 and service_type = 'compute'`, [
    tier,
    me.body.customer_id,
  ]);
  await suite.app.deps.principals.invalidateCustomer(me.body.customer_id);
}

/** Waits until the customer's in-flight places in Redis number `count`. */
async function inFlightReaches(user: TestUser, count: number) {
  const me = await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken });
  await waitFor(async () => (await suite.app.deps.leases.count(placeName('in-flight', me.body.customer_id))) === count, 10_000);
}

describe('requests in flight per customer', () => {
  it('refuses a starter customer its third concurrent request with 429 and Retry-After; another customer is served meanwhile', async () => {
    const held = [heldInvoke(attacker, 1), heldInvoke(attacker, 2)];
    await inFlightReaches(attacker, 2);
    const refused = await suite.request('GET', '/api/v1/jobs', { token: attacker.accessToken });
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body.detail).toMatch(/requests in flight/);
    expect((await suite.request('GET', '/api/v1/jobs', { token: victim.accessToken })).status).toBe(200);
    expect((await Promise.all(held)).map((response) => response.status)).toEqual([202, 202]);
    // Places are released when the answers go out.
    await inFlightReaches(attacker, 0);
    expect((await suite.request('GET', '/api/v1/jobs', { token: attacker.accessToken })).status).toBe(200);
  });

  it('caps an enterprise customer too, at its own figure', async () => {
    await setTier(attacker, 'enterprise');
    try {
      const held = [heldInvoke(attacker, 3), heldInvoke(attacker, 4), heldInvoke(attacker, 5)];
      await inFlightReaches(attacker, 3);
      expectProblem(await suite.request('GET', '/api/v1/jobs', { token: attacker.accessToken }), 429, 'rate-limited');
      expect((await suite.request('GET', '/api/v1/jobs', { token: victim.accessToken })).status).toBe(200);
      await Promise.all(held);
    } finally {
      await setTier(attacker, 'starter');
    }
  });

  it('frees the place of a request whose client went away', async () => {
    const abort = new AbortController();
    const gone = fetch(`${suite.app.baseUrl}/api/v1/substrates/${substrateOf.get(attacker.email)}/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${attacker.accessToken}`, 'content-type': 'application/json', prefer: 'wait=20' },
      body: JSON.stringify({ parameters: { x: 6, y: 1 } }),
      signal: abort.signal,
    }).catch(() => null);
    await inFlightReaches(attacker, 1);
    abort.abort();
    await gone;
    await inFlightReaches(attacker, 0);
  });
});

describe('open event streams per customer', () => {
  it('refuses a second stream past the tier figure with 429, and takes one again once the first closes', async () => {
    const job = await heldInvoke(attacker, 7, 0);
    const url = `${suite.app.baseUrl}/api/v1/jobs/${job.body.id}/events`;
    const first = await openSse(url, { token: attacker.accessToken });
    expect(first.status).toBe(200);
    const second = await openSse(url, { token: attacker.accessToken });
    expect(second.status).toBe(429);
    second.close();
    // A stream is not a request in flight: the customer's other calls still go through.
    expect((await suite.request('GET', '/api/v1/jobs', { token: attacker.accessToken })).status).toBe(200);
    const victimJob = await heldInvoke(victim, 8, 0);
    const victims = await openSse(`${suite.app.baseUrl}/api/v1/jobs/${victimJob.body.id}/events`, { token: victim.accessToken });
    expect(victims.status).toBe(200);
    victims.close();
    first.close();
    const third = await waitFor(
      async () => {
        const attempt = await openSse(url, { token: attacker.accessToken });
        if (attempt.status === 200) return attempt;
        attempt.close();
        return null;
      },
      10_000,
      100,
    );
    third.close();
  });
});

describe('LeaseSemaphores', () => {
  let redis: ReturnType<typeof createRedis>;
  let prefix: string;
  beforeAll(() => {
    redis = createRedis(suite.app.config.redis);
    prefix = `${suite.app.config.queuePrefix}:lease-test`;
  });
  afterAll(async () => {
    await redis?.quit();
  });

  it('keeps a held lease past its lifetime by renewing it, and frees the places of a process that died', async () => {
    const dying = new LeaseSemaphores(redis, prefix, { leaseMs: 300 });
    const survivor = new LeaseSemaphores(redis, prefix, { leaseMs: 300 });
    const lease = await dying.acquire('s', 1);
    expect('release' in lease).toBe(true);
    await sleep(900); // three lifetimes: renewals kept it
    expect(await survivor.acquire('s', 1)).toEqual({ full: 1 });
    dying.close(); // the process dies: no release, no renewal
    const taken = await waitFor(
      async () => {
        const attempt = await survivor.acquire('s', 1);
        return 'release' in attempt ? attempt : null;
      },
      5_000,
      50,
    );
    taken.release();
    survivor.close();
  });

  it("spends a point and takes a place in one script, on a count rate-limiter-flexible's limiter reads and spends too", async () => {
    const semaphores = new LeaseSemaphores(redis, prefix);
    const limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:rl`, points: 3, duration: 60 });
    const customerId = `counted-${Date.now()}`;
    const counter = { key: limiter.getKey(`{${customerId}}:compute`), points: 1, windowSeconds: 60, budget: 3 };
    const take = () => semaphores.acquireCounting(placeName('in-flight', customerId), 1, counter);
    try {
      const first = await take();
      expect(first?.consumed).toBe(1);
      expect(first?.msBeforeNext).toBeGreaterThan(59_000);
      expect(first?.place && 'release' in first.place).toBe(true);
      // Full: the refused take still spends its point.
      expect(await take()).toMatchObject({ consumed: 2, place: { full: 1 } });
      // A scheduled run (workers) spends from the same count through rate-limiter-flexible.
      expect((await limiter.consume(`{${customerId}}:compute`)).remainingPoints).toBe(0);
      // Past the budget: no place is tried, even once one is free.
      if (first?.place && 'release' in first.place) first.place.release();
      await waitFor(async () => (await semaphores.count(placeName('in-flight', customerId))) === 0, 5_000);
      expect(await take()).toMatchObject({ consumed: 4, place: null });
      expect(await semaphores.count(placeName('in-flight', customerId))).toBe(0);
    } finally {
      semaphores.close();
    }
  });

  it("frees a released place for this process's next take at once, and for other processes within moments", async () => {
    const mine = new LeaseSemaphores(redis, prefix);
    const other = new LeaseSemaphores(redis, prefix);
    try {
      const first = await mine.acquire('freed', 1);
      if (!('release' in first)) throw new Error('no place');
      first.release();
      // The next take removes the released lease in its own script: no wait for a ZREM.
      const second = await mine.acquire('freed', 1);
      if (!('release' in second)) throw new Error(`refused: ${JSON.stringify(second)}`);
      expect(await other.acquire('freed', 1)).toEqual({ full: 1 });
      second.release();
      const started = performance.now();
      const third = await waitFor(
        async () => {
          const attempt = await other.acquire('freed', 1);
          return 'release' in attempt ? attempt : null;
        },
        2_000,
        1,
      );
      expect(performance.now() - started).toBeLessThan(500);
      third.release();
    } finally {
      mine.close();
      other.close();
    }
  });
});
