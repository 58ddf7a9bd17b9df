import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type RedisClient } from '../../lib/redis.js';
import { WindowCountsAhead } from '../../lib/window-counts-ahead.js';
import { waitFor } from '../helpers/http.js';
import { testRedisTarget } from '../helpers/redis-target.js';

/**
 * Per-window counts spent in this process ahead of Redis (a customer's steady requests wait for no round trip
 * for their rate point), against a real Redis and the rate-limiter-flexible limiter that reads and spends the
 * same counts (bulk submits, scheduled runs).
 */
let redis: RedisClient;
beforeAll(() => {
  redis = createRedis(testRedisTarget());
});
afterAll(async () => {
  await redis?.quit();
});

/** A fresh count of `budget` points a minute, the limiter that spends it in Redis, and its key there. */
function freshCount(budget: number) {
  const limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix: `counts-ahead-test`, points: budget, duration: 60 });
  const name = `{${randomUUID()}}:compute`;
  const count = { key: limiter.getKey(name), windowSeconds: 60, budget };
  /** Spends one point in Redis first (the way a request does when it cannot spend ahead): the count after it. */
  const spendInRedis = async () => {
    const answer = await limiter.consume(name).catch((refused: unknown) => {
      if (refused instanceof RateLimiterRes) return refused;
      throw refused;
    });
    return { consumed: answer.consumedPoints, msBeforeNext: answer.msBeforeNext };
  };
  const inRedis = async () => (await limiter.get(name))?.consumedPoints ?? 0;
  return { limiter, name, count, spendInRedis, inRedis };
}

describe('WindowCountsAhead', () => {
  it('spends nothing ahead of a count Redis has not answered for', () => {
    const ahead = new WindowCountsAhead(redis);
    expect(ahead.spendHere(freshCount(100).count)).toBeNull();
  });

  it("once Redis has answered, spends up to a reserve (a tenth) ahead at once, and the points follow to Redis's count", async () => {
    const ahead = new WindowCountsAhead(redis);
    const { count, spendInRedis, inRedis } = freshCount(100);
    const first = await spendInRedis();
    ahead.heard(count.key, first.consumed, first.msBeforeNext);

    // Synchronous: no answer from Redis can arrive between these.
    const spent = Array.from({ length: 12 }, () => ahead.spendHere(count));
    expect(spent.slice(0, 10).map((answer) => answer?.consumed)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(spent[0]!.msBeforeNext).toBeGreaterThan(55_000);
    expect(spent[10]).toBeNull();

    await waitFor(async () => (await inRedis()) === 11, 5_000, 10);
    // Redis has answered for those: spending ahead goes on.
    await waitFor(async () => ahead.spendHere(count) !== null, 5_000, 10);
    await waitFor(async () => (await inRedis()) === 12, 5_000, 10);
  });

  it('never spends the last reserve of a window ahead: those points are counted in Redis first', async () => {
    const ahead = new WindowCountsAhead(redis);
    const { count, limiter, name, inRedis } = freshCount(100);
    const spentBefore = await limiter.consume(name, 89);
    ahead.heard(count.key, spentBefore.consumedPoints, spentBefore.msBeforeNext);
    expect(ahead.spendHere(count)?.consumed).toBe(90);
    expect(ahead.spendHere(count)).toBeNull();
    await waitFor(async () => (await inRedis()) === 90, 5_000, 10);
    await sleep(20);
    expect(ahead.spendHere(count)).toBeNull();
  });

  it("asks Redis again once its answer is stale, or when the window is about to end, or after another spender's bulk", async () => {
    const ahead = new WindowCountsAhead(redis, { freshMs: 30 });
    const { count, spendInRedis } = freshCount(100);
    const first = await spendInRedis();
    ahead.heard(count.key, first.consumed, first.msBeforeNext);
    expect(ahead.spendHere(count)).not.toBeNull();
    await sleep(60);
    expect(ahead.spendHere(count)).toBeNull();

    ahead.heard(count.key, 5, 20);
    expect(ahead.spendHere(count)).toBeNull();

    ahead.heard(count.key, 5, 60_000);
    ahead.forget(count.key);
    expect(ahead.spendHere(count)).toBeNull();
  });

  it('keeps counting the points spent ahead of a forgotten count: they still reach Redis and the next answer adds them', async () => {
    const ahead = new WindowCountsAhead(redis);
    const { count, spendInRedis, inRedis } = freshCount(100);
    const first = await spendInRedis();
    ahead.heard(count.key, first.consumed, first.msBeforeNext);
    expect([ahead.spendHere(count), ahead.spendHere(count), ahead.spendHere(count)].map((spent) => spent?.consumed)).toEqual([2, 3, 4]);
    // A bulk spend elsewhere: forgotten, so the next request asks Redis — whose answer may come before the 3 are
    // sent. Either way one process's view stays exact: 1 + 3 ahead + 1 in Redis, and this one makes 6.
    ahead.forget(count.key);
    expect(ahead.spendHere(count)).toBeNull();
    const counted = await spendInRedis();
    ahead.heard(count.key, counted.consumed, counted.msBeforeNext);
    expect(ahead.spendHere(count)?.consumed).toBe(6);
    await waitFor(async () => (await inRedis()) === 6, 5_000, 10);
  });

  it('hands a caller that counts in Redis itself the points not sent yet, once those on their way have arrived', async () => {
    const ahead = new WindowCountsAhead(redis);
    const { count, spendInRedis, inRedis, limiter, name } = freshCount(100);
    const first = await spendInRedis();
    ahead.heard(count.key, first.consumed, first.msBeforeNext);
    expect([ahead.spendHere(count)?.consumed, ahead.spendHere(count)?.consumed]).toEqual([2, 3]);
    // Not sent yet (they go a timer turn later): handed over at once, for the caller to spend with its own point.
    expect(ahead.takeAhead(count.key)).toBe(2);
    const counted = await limiter.consume(name, 1 + 2);
    expect(counted.consumedPoints).toBe(4);
    await sleep(20);
    expect(await inRedis()).toBe(4);

    ahead.heard(count.key, counted.consumedPoints, counted.msBeforeNext);
    expect(ahead.spendHere(count)?.consumed).toBe(5);
    // Its send goes out a timer turn later; one more is spent once it has (Redis may have answered or not yet).
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ahead.spendHere(count)?.consumed).toBe(6);
    // Whichever of the two is still on its way or unsent, the caller's count in Redis holds both, and its own point.
    const handed = await ahead.takeAhead(count.key);
    const after = await limiter.consume(name, 1 + handed);
    expect(after.consumedPoints).toBe(7);
    await sleep(20);
    expect(await inRedis()).toBe(7);
  });

  it('forgets a count whose points Redis refused, so the next request asks Redis', async () => {
    const ahead = new WindowCountsAhead(redis);
    const { count } = freshCount(100);
    // A key of the wrong type: the send's INCRBY fails.
    await redis.hset(count.key, 'not', 'a count');
    try {
      ahead.heard(count.key, 1, 60_000);
      expect(ahead.spendHere(count)).not.toBeNull();
      await waitFor(async () => ahead.spendHere(count) === null, 5_000, 10);
      await sleep(20);
      expect(ahead.spendHere(count)).toBeNull();
    } finally {
      await redis.del(count.key);
    }
  });

  it('keeps at most maxKnown counts: a newcomer is kept once the stale ones are swept', async () => {
    const ahead = new WindowCountsAhead(redis, { freshMs: 30, maxKnown: 2 });
    const [first, second, third] = [freshCount(100), freshCount(100), freshCount(100)].map((fresh) => fresh.count);
    for (const count of [first!, second!, third!]) ahead.heard(count.key, 1, 60_000);
    expect(ahead.spendHere(first!)).not.toBeNull();
    expect(ahead.spendHere(third!)).toBeNull(); // the map was full: not kept
    await sleep(60);
    ahead.heard(third!.key, 1, 60_000);
    expect(ahead.spendHere(third!)).not.toBeNull();
  });

  it("lets exactly the budget through when two processes take turns on one customer's count", async () => {
    const processes = [new WindowCountsAhead(redis), new WindowCountsAhead(redis)];
    const { count, spendInRedis, inRedis } = freshCount(20);
    let passed = 0;
    let spentAhead = 0;
    for (let request = 0; request < 30; request++) {
      const here = processes[request % 2]!;
      const ahead = here.spendHere(count);
      if (ahead) {
        spentAhead++;
        passed++;
      } else {
        const counted = await spendInRedis();
        here.heard(count.key, counted.consumed, counted.msBeforeNext);
        if (counted.consumed <= count.budget) passed++;
      }
      await sleep(2); // requests come one after another, a round trip apart
    }
    expect(passed).toBe(20);
    expect(spentAhead).toBeGreaterThan(10);
    await waitFor(async () => (await inRedis()) >= 30, 5_000, 10);
  });
});
