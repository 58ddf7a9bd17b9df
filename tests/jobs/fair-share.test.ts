import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFairShare,
  fairShareKey,
  fairWeight,
  laneSeq,
  packHints,
  unpackHints,
  type FairShare,
  type FairShareOptions,
  type FinishedJob,
} from '../../queue/fair-share/fair-share.js';
import type { Redis } from 'ioredis';
import { createRedis } from '../../lib/redis.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { testRedisTarget } from '../helpers/redis-target.js';
import { heldIds } from '../helpers/fair-lanes.js';

/** The fair-sharing engine of one shard against real Redis; each test has its own shard (hash tag). */
let redis: Redis;
const prefix = `fairtest${process.pid}`;
const shard = () => `${prefix}:{t-${randomUUID().slice(0, 8)}}`;
const weights = { starter: 1, pro: 4, enterprise: 16 };

beforeAll(() => {
  // Under TEST_REDIS_CLUSTER=1 the run's cluster (a cluster client has the same commands).
  redis = createRedis(testRedisTarget()) as Redis;
});

afterAll(async () => {
  await deleteKeys(redis, `${prefix}:*`);
  await redis.quit();
});

/** A shard's fair share, plus `release`: the jobs one `releaseBatch` call (the dispatcher's) released. */
function withRelease(share: FairShare) {
  return { ...share, release: async (key: string, finished: readonly FinishedJob[]) => (await share.releaseBatch(key, finished)).released };
}

/** A fair share with a clock the test moves; no base cost per job unless a test asks for one (charges are the work given). */
function engine(options: FairShareOptions = {}) {
  const clock = { now: Date.now() };
  return { fair: withRelease(createFairShare(redis, { now: () => clock.now, baseCostMs: 0, ...options })), clock };
}

const ids = (count: number) => Array.from({ length: count }, () => uuidv7());

describe('fair sharing of a shard', () => {
  it("releases customer B's job next while A has 10,000 held", async () => {
    const { fair } = engine({ windowMs: 10, defaultCostMs: 5 });
    const key = shard();
    const backlog = ids(10_000);
    const releasedNow: string[] = [];
    for (let start = 0; start < backlog.length; start += 1000) {
      const chunk = backlog.slice(start, start + 1000).map((id) => ({ id, customerId: 'A', weight: weights.enterprise }));
      releasedNow.push(...(await fair.admit(key, chunk)));
    }
    expect(releasedNow).toEqual(backlog.slice(0, 2));

    // B has nothing in flight: its job does not wait for A's full window to drain, whatever A holds.
    const [bJob] = ids(1);
    expect(await fair.admit(key, [{ id: bJob!, customerId: 'B', weight: weights.starter }])).toEqual([bJob]);
    // Its next job, submitted while the first runs, is held; it is released ahead of A's once its first is done.
    const [bNext] = ids(1);
    expect(await fair.admit(key, [{ id: bNext!, customerId: 'B', weight: weights.starter }])).toEqual([]);
    const next = await fair.release(key, [
      { id: bJob!, customerId: 'B', workMs: 0 },
      { id: backlog[0]!, customerId: 'A', workMs: 5 },
    ]);
    expect(next[0]).toEqual({ id: bNext, customerId: 'B', hints: '', backlogged: false });
    expect(await heldIds(redis, key, 'A')).toHaveLength(10_000 - 2 - (next.length - 1));
  });

  // B's first job took 200 ms of worker time at weight 1: 3,200 ms of A's at 16 (640 of its 5 ms jobs) were it charged in full.
  it.each([
    ['while its next job waits in its lane', true],
    ['before its next jobs came (B rejoins with that debt)', false],
  ])("releases B's next job within a window of A's work though B's first measured far above its estimate, %s", async (_, nextFirst) => {
    const { fair } = engine({ windowMs: 10, defaultCostMs: 5 });
    const key = shard();
    const backlog = ids(1000);
    let inFlight = await fair.admit(
      key,
      backlog.map((id) => ({ id, customerId: 'A', weight: weights.enterprise })),
    );
    const [bFirst, bSecond, bNext] = ids(3);
    expect(await fair.admit(key, [{ id: bFirst!, customerId: 'B', weight: weights.starter }])).toEqual([bFirst]);
    const bFirstEnds = () => fair.release(key, [{ id: bFirst!, customerId: 'B', workMs: 200 }]);
    let released: Awaited<ReturnType<typeof bFirstEnds>>;
    if (nextFirst) {
      expect(await fair.admit(key, [{ id: bNext!, customerId: 'B', weight: weights.starter }])).toEqual([]);
      released = await bFirstEnds();
    } else {
      released = await bFirstEnds();
      // B has nothing in flight again: its next job goes at once, the one after waits in a lane it joins now.
      expect(await fair.admit(key, [{ id: bSecond!, customerId: 'B', weight: weights.starter }])).toEqual([bSecond]);
      expect(await fair.admit(key, [{ id: bNext!, customerId: 'B', weight: weights.starter }])).toEqual([]);
    }
    let aAhead = 0;
    while (!released.some((job) => job.id === bNext)) {
      aAhead += released.length;
      const finished = inFlight.map((id) => ({ id, customerId: 'A', workMs: 5 }));
      expect(finished.length).toBeGreaterThan(0);
      released = await fair.release(key, finished);
      inFlight = released.map((job) => job.id);
    }
    aAhead += released.findIndex((job) => job.id === bNext);
    // The lead limit: one window of A's work (10 ms / 5 ms a job), plus what was in flight when B's job was held.
    expect(aAhead).toBeLessThanOrEqual(4);
  });

  it("still charges B the work the lead limit held back: B's job after the next waits behind it (B's debt)", async () => {
    const { fair } = engine({ windowMs: 10, defaultCostMs: 5 });
    const key = shard();
    let inFlight = await fair.admit(
      key,
      ids(2000).map((id) => ({ id, customerId: 'A', weight: weights.enterprise })),
    );
    const [bFirst, bNext, bAfter] = ids(3);
    expect(await fair.admit(key, [{ id: bFirst!, customerId: 'B', weight: weights.starter }])).toEqual([bFirst]);
    expect(
      await fair.admit(
        key,
        [bNext!, bAfter!].map((id) => ({ id, customerId: 'B', weight: weights.starter })),
      ),
    ).toEqual([]);
    let released = await fair.release(key, [{ id: bFirst!, customerId: 'B', workMs: 200 }]);
    const aAheadOf: Record<string, number> = {};
    let aReleased = 0;
    while (!released.some((job) => job.id === bAfter)) {
      for (const job of released) {
        if (job.customerId === 'A') aReleased++;
        else aAheadOf[job.id] = aReleased;
      }
      const finished = inFlight.map((id) => ({ id, customerId: released.find((job) => job.id === id)?.customerId ?? 'A', workMs: 5 }));
      expect(finished.length).toBeGreaterThan(0);
      released = await fair.release(key, finished);
      inFlight = released.map((job) => job.id);
    }
    aAheadOf[bAfter!] = aReleased + released.findIndex((job) => job.id === bAfter);
    // B's next goes within the lead limit; the 195 ms it owes at weight 1 (3,120 ms of A's 5 ms jobs at 16) go
    // on B's vt with that release, so its job after waits for ~600 of A's: owed, not forgiven.
    expect(aAheadOf[bNext!]).toBeLessThanOrEqual(4);
    expect(aAheadOf[bAfter!]).toBeGreaterThan(500);
  });

  it('keeps at most maxInflight jobs of cheap work in flight, so B waits behind that many, not the whole window', async () => {
    const { fair } = engine({ windowMs: 50, minInflight: 2, maxInflight: 4, maxReleasedPerCustomer: 0, defaultCostMs: 0.001 });
    const key = shard();
    const backlog = ids(1000);
    const released = await fair.admit(
      key,
      backlog.map((id) => ({ id, customerId: 'A', weight: weights.enterprise })),
    );
    // 50 ms of microsecond jobs would be all 1,000 of them.
    expect(released).toEqual(backlog.slice(0, 4));
    // B has nothing in flight: its job is released at once, past the cap by one (one job per such customer).
    const [bJob] = ids(1);
    expect(await fair.admit(key, [{ id: bJob!, customerId: 'B', weight: weights.starter }])).toEqual([bJob]);
    expect(await redis.zcard(`${key}:fair:inflight`)).toBe(5);
    // While the shard is at its cap nothing more is released.
    expect(await fair.release(key, [{ id: backlog[0]!, customerId: 'A', workMs: 0.001 }])).toEqual([]);
    expect(await fair.release(key, [{ id: bJob!, customerId: 'B', workMs: 0.001 }])).toHaveLength(1);
    expect(await redis.zcard(`${key}:fair:inflight`)).toBe(4);
  });

  it("releases none of a paused customer's jobs, keeps its lane at vmin meanwhile, and releases them once resumed", async () => {
    const { fair } = engine({ windowMs: 10, minInflight: 2, defaultCostMs: 5 });
    const key = shard();
    await fair.setPaused(key, 'A', true);
    const aJobs = ids(5);
    // The window has room, but A is paused: held.
    expect(
      await fair.admit(
        key,
        aJobs.map((id) => ({ id, customerId: 'A', weight: 1 })),
      ),
    ).toEqual([]);
    const bJobs = ids(20);
    let inFlight = await fair.admit(
      key,
      bJobs.map((id) => ({ id, customerId: 'B', weight: 1 })),
    );
    const bReleased = [...inFlight];
    while (inFlight.length > 0) {
      const next = await fair.release(
        key,
        inFlight.map((id) => ({ id, customerId: 'B', workMs: 5 })),
      );
      expect(next.map((job) => job.customerId)).not.toContain('A');
      inFlight = next.map((job) => job.id);
      bReleased.push(...inFlight);
    }
    expect(bReleased).toEqual(bJobs);
    expect(await heldIds(redis, key, 'A')).toHaveLength(5);
    const vmin = Number(await redis.hget(`${key}:fair:meta`, 'vmin'));
    expect(vmin).toBeGreaterThan(0);
    // A pause banks no credit: A's lane is not left behind at the vt it had when paused.
    expect(Number(await redis.zscore(`${key}:fair:lanes`, 'A'))).toBeGreaterThanOrEqual(vmin);

    await fair.setPaused(key, 'A', false);
    expect((await fair.release(key, [])).map((job) => job.id)).toEqual(aJobs.slice(0, 2));
  });

  it('releases a job at once when its customer has no lane and the window has room', async () => {
    const { fair } = engine();
    const key = shard();
    const [id] = ids(1);
    expect(await fair.admit(key, [{ id: id!, customerId: 'A', weight: 1, hints: '{"notify":true}' }])).toEqual([id]);
    expect(await redis.zcard(`${key}:fair:lanes`)).toBe(0);
  });

  it('gives backlogged customers worker time in the ratio of their weights, whatever their jobs cost', async () => {
    const { fair } = engine({ windowMs: 20, minInflight: 4, defaultCostMs: 2 });
    const key = shard();
    // A (pro, 4) runs jobs 4× as costly as C's (starter, 1): A should get 4/5 of the worker time.
    const cost: Record<string, number> = { A: 4, C: 1 };
    const initial: string[] = [];
    const owner = new Map<string, string>();
    for (const [customerId, weight] of [
      ['A', weights.pro],
      ['C', weights.starter],
    ] as const) {
      const backlog = ids(3000);
      for (const id of backlog) owner.set(id, customerId);
      initial.push(
        ...(await fair.admit(
          key,
          backlog.map((id) => ({ id, customerId, weight })),
        )),
      );
    }

    // Four workers in simulated time, taking released jobs in release order (as BullMQ does).
    const ready = [...initial];
    const running: Array<{ id: string; finishAt: number }> = [];
    const work: Record<string, number> = { A: 0, C: 0 };
    let now = 0;
    const startJobs = () => {
      while (running.length < 4 && ready.length > 0) {
        const id = ready.shift()!;
        running.push({ id, finishAt: now + cost[owner.get(id)!]! });
      }
    };
    startJobs();
    for (let finished = 0; finished < 2500; finished++) {
      running.sort((a, b) => a.finishAt - b.finishAt);
      const done = running.shift()!;
      now = done.finishAt;
      const customerId = owner.get(done.id)!;
      if (finished >= 200) work[customerId]! += cost[customerId]!;
      const next = await fair.release(key, [{ id: done.id, customerId, workMs: cost[customerId] }]);
      ready.push(...next.map((job) => job.id));
      startJobs();
    }
    expect((await heldIds(redis, key, 'A')).length).toBeGreaterThan(0);
    expect((await heldIds(redis, key, 'C')).length).toBeGreaterThan(0);
    const ratio = work.A! / work.C!;
    expect(ratio).toBeGreaterThan(4 * 0.8);
    expect(ratio).toBeLessThan(4 * 1.2);
  });

  it('charges every job a base cost, so microsecond jobs still fill the window at one base cost each', async () => {
    for (const [baseCostMs, most] of [
      [1, 10],
      [0, Infinity],
    ] as const) {
      const { fair } = engine({ windowMs: 10, minInflight: 1, defaultCostMs: 1, maxReleasedPerCustomer: 0, baseCostMs });
      const key = shard();
      let inFlight = await fair.admit(
        key,
        ids(2000).map((id) => ({ id, customerId: 'A', weight: weights.enterprise })),
      );
      expect(inFlight).toHaveLength(10);
      let peak = 0;
      // Rounds of invokes measured at 4 µs each.
      for (let round = 0; round < 30 && inFlight.length > 0; round++) {
        const next = await fair.release(
          key,
          inFlight.map((id) => ({ id, customerId: 'A', workMs: 0.004 })),
        );
        inFlight = next.map((job) => job.id);
        peak = Math.max(peak, inFlight.length);
      }
      // Without a base cost the estimate falls to 4 µs and the window lets hundreds through.
      if (most === Infinity) expect(peak).toBeGreaterThan(100);
      else expect(peak).toBeLessThanOrEqual(most);
    }
  });

  it("caps one job's charge, so an outlier does not push its customer far behind", async () => {
    const { fair } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1, baseCostMs: 1, maxChargeMs: 100 });
    const key = shard();
    const [first, ...rest] = ids(3);
    expect(
      await fair.admit(
        key,
        [first!, ...rest].map((id) => ({ id, customerId: 'A', weight: 1 })),
      ),
    ).toEqual([first]);
    // Measured a minute (a stalled wall-time job): charged 1 + 100 ms.
    await fair.release(key, [{ id: first!, customerId: 'A', workMs: 60_000 }]);
    const vt = Number(await redis.zscore(fairShareKey(key, 'lanes'), 'A'));
    expect(vt).toBeGreaterThan(100);
    expect(vt).toBeLessThan(1000);
  });

  it('is work-conserving: a customer alone gets the whole window', async () => {
    const { fair } = engine({ windowMs: 50, defaultCostMs: 5, maxReleasedPerCustomer: 0 });
    const key = shard();
    const backlog = ids(200);
    let inFlight = await fair.admit(
      key,
      backlog.map((id) => ({ id, customerId: 'A', weight: 1 })),
    );
    expect(inFlight).toHaveLength(10);
    const seen = new Set(inFlight);
    while (inFlight.length > 0) {
      const [done, ...rest] = inFlight;
      const next = await fair.release(key, [{ id: done!, customerId: 'A', workMs: 5 }]);
      for (const job of next) seen.add(job.id);
      inFlight = [...rest, ...next.map((job) => job.id)];
      // Every finished job is replaced while A has a backlog: the window never runs below full.
      if (seen.size < backlog.length) expect(inFlight).toHaveLength(10);
    }
    expect(seen.size).toBe(backlog.length);
  });

  it('releases every job exactly once when several worker processes release at the same time', async () => {
    const other = redis.duplicate();
    const key = shard();
    const processes = [redis, other].map((client) =>
      withRelease(createFairShare(client, { windowMs: 8, minInflight: 4, defaultCostMs: 1, baseCostMs: 0 })),
    );
    const backlog = ids(600);
    const customerOf = new Map(backlog.map((id, i) => [id, i % 3 === 0 ? 'B' : 'A']));
    const ready = await processes[0]!.admit(
      key,
      backlog.map((id) => ({ id, customerId: customerOf.get(id)!, weight: 1 })),
    );
    const released = [...ready];
    // Each process takes released jobs and reports them finished, concurrently with the other.
    await Promise.all(
      processes.map(async (fair) => {
        while (released.length < backlog.length || ready.length > 0) {
          const id = ready.shift();
          const next = await fair.release(key, id ? [{ id, customerId: customerOf.get(id)!, workMs: 1 }] : []);
          for (const job of next) {
            released.push(job.id);
            ready.push(job.id);
          }
          if (!id && next.length === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      }),
    );
    await other.quit();
    expect(released).toHaveLength(backlog.length);
    expect(new Set(released).size).toBe(backlog.length);
    expect(await redis.zcard(`${key}:fair:inflight`)).toBe(0);
    expect(await redis.hget(`${key}:fair:meta`, 'work')).toBe('0');
  });

  it('caps the released jobs of one customer per shard, and lets another use the room', async () => {
    const { fair } = engine({ windowMs: 1000, defaultCostMs: 1, maxReleasedPerCustomer: 3 });
    const key = shard();
    const released = await fair.admit(
      key,
      ids(10).map((id) => ({ id, customerId: 'A', weight: 16 })),
    );
    expect(released).toHaveLength(3);
    const [bJob] = ids(1);
    expect(await fair.admit(key, [{ id: bJob!, customerId: 'B', weight: 1 }])).toEqual([bJob]);
    expect(await fair.release(key, [])).toEqual([]);
    const next = await fair.release(key, [{ id: released[0]!, customerId: 'A', workMs: 1 }]);
    expect(next.map((job) => job.customerId)).toEqual(['A']);
  });

  it('estimates, caps and charges a bundle held whole as the jobs it stands for, not as one job', async () => {
    // A's bundles of 50, its cost never measured (5 ms a job): the first is 250 ms of estimated work, past the window.
    const { fair } = engine({ windowMs: 100, minInflight: 1, defaultCostMs: 5 });
    const key = shard();
    const bundles = ids(4).map((id) => `bundle-${id}`);
    const entry = (id: string) => ({ id, customerId: 'A', weight: 1, jobs: 50 });
    expect(await fair.admit(key, bundles.map(entry))).toEqual([bundles[0]]);
    expect(await redis.hget(fairShareKey(key, 'count'), 'A')).toBe('50');
    expect(await heldIds(redis, key, 'A')).toEqual(bundles.slice(1));

    // It ran 50 jobs in 100 ms: 2 ms a job, so the next bundle is estimated at 100 ms and fills the window alone.
    const next = await fair.release(key, [{ id: bundles[0]!, customerId: 'A', workMs: 100, jobs: 50 }]);
    expect(next.map((job) => job.id)).toEqual([bundles[1]]);
    expect(await redis.hget(fairShareKey(key, 'cost'), 'A')).toBe('2');
    expect(await redis.hget(fairShareKey(key, 'meta'), 'work')).toBe('100');
    expect(await redis.hget(fairShareKey(key, 'count'), 'A')).toBe('50');

    // The per-customer cap counts the members: with room in the window, a cap of 60 stops A after its second bundle.
    const capped = engine({ windowMs: 100_000, defaultCostMs: 1, maxReleasedPerCustomer: 60 });
    const other = shard();
    const more = ids(4).map((id) => `bundle-${id}`);
    expect(await capped.fair.admit(other, more.map(entry))).toEqual(more.slice(0, 2));
    const [bJob] = ids(1);
    expect(await capped.fair.admit(other, [{ id: bJob!, customerId: 'B', weight: 1 }])).toEqual([bJob]);
  });

  it('counts an entry said to stand for no jobs, or fewer, as one job: it never rides free past the window or the cap', async () => {
    const { fair } = engine({ windowMs: 1000, defaultCostMs: 1, maxReleasedPerCustomer: 2 });
    const key = shard();
    const entries = ids(3).map((id) => `bundle-${id}`);
    const released = await fair.admit(key, [
      { id: entries[0]!, customerId: 'A', weight: 1, jobs: 0 },
      { id: entries[1]!, customerId: 'A', weight: 1, jobs: -5 },
      { id: entries[2]!, customerId: 'A', weight: 1, jobs: Number.NaN },
    ]);
    expect(released).toEqual(entries.slice(0, 2));
    expect(await redis.hget(fairShareKey(key, 'count'), 'A')).toBe('2');
    expect(await redis.hget(fairShareKey(key, 'meta'), 'work')).toBe('2');
    // A finished entry that says it ran no jobs is measured as one.
    await fair.release(key, [{ id: entries[0]!, customerId: 'A', workMs: 3, jobs: 0 }]);
    expect(await redis.hget(fairShareKey(key, 'cost'), 'A')).toBe('3');
  });

  it("orders a customer's held jobs by priority, then submission order", async () => {
    const { fair } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1 });
    const key = shard();
    const [blocker, low, none1, high, none2] = ids(5);
    expect(await fair.admit(key, [{ id: blocker!, customerId: 'A', weight: 1 }])).toEqual([blocker]);
    await fair.admit(key, [
      { id: low!, customerId: 'A', weight: 1, priority: 5 },
      { id: none1!, customerId: 'A', weight: 1 },
      { id: high!, customerId: 'A', weight: 1, priority: 1 },
      { id: none2!, customerId: 'A', weight: 1 },
    ]);
    const order: string[] = [];
    let previous = blocker!;
    for (let i = 0; i < 4; i++) {
      const [next] = await fair.release(key, [{ id: previous, customerId: 'A', workMs: 1 }]);
      order.push(next!.id);
      previous = next!.id;
    }
    expect(order).toEqual([none1, none2, high, low]);
  });

  it('keeps a delayed job until it is due, then releases it through its lane', async () => {
    const { fair, clock } = engine();
    const key = shard();
    const [id] = ids(1);
    expect(
      await fair.admit(key, [{ id: id!, customerId: 'A', weight: 1, delayUntil: clock.now + 60_000, hints: '{"notify":true}' }]),
    ).toEqual([]);
    expect(await fair.release(key, [])).toEqual([]);
    clock.now += 59_000;
    expect(await fair.release(key, [])).toEqual([]);
    clock.now += 1_001;
    expect(await fair.release(key, [])).toEqual([{ id, customerId: 'A', hints: '{"notify":true}', backlogged: false }]);
  });

  it('admits a job once, however often its chunk (or the job within it) comes again', async () => {
    const { fair } = engine({ windowMs: 2, minInflight: 2, defaultCostMs: 1 });
    const key = shard();
    const [first, second, third, fourth] = ids(4);
    const delayed = ids(1)[0]!;
    const chunk = [first!, second!, third!, third!, fourth!].map((id) => ({ id, customerId: 'A', weight: 1 }));
    const withDelayed = [...chunk, { id: delayed, customerId: 'A', weight: 1, delayUntil: Date.now() + 60_000 }];
    expect(await fair.admit(key, withDelayed)).toEqual([first, second]);
    expect(await fair.admit(key, withDelayed)).toEqual([]);
    expect(await heldIds(redis, key, 'A')).toEqual([third, fourth]);
    expect(await redis.zcard(`${key}:fair:inflight`)).toBe(2);
    expect(await redis.hget(`${key}:fair:count`, 'A')).toBe('2');
    expect(await redis.zcard(`${key}:fair:delayed`)).toBe(1);
  });

  it('withdraws a held job whose lane entry carries hint flags, and the lane empties', async () => {
    const { fair } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1 });
    const key = shard();
    const [running, held] = ids(2);
    await fair.admit(
      key,
      [running, held].map((id) => ({ id: id!, customerId: 'A', weight: 1, hints: packHints({ cacheMissed: true, notify: true }) })),
    );
    expect(await redis.lrange(`${key}:fair:lane:A`, 0, -1)).toEqual([`${held}!mn`]);
    expect(await fair.withdraw(key, running!, 'A')).toBe(false);
    expect(await fair.withdraw(key, held!, 'A')).toBe(true);
    expect(await redis.zcard(fairShareKey(key, 'lanes'))).toBe(0);
  });

  it('packs hints that are flags into letters, and anything else into JSON', () => {
    expect(packHints({})).toBe('');
    expect(packHints({ cacheMissed: true, hasWebhookUrl: true })).toBe('!mw');
    // Letters in one order whatever the object's: a cancel finds the entry among few candidates.
    expect(packHints({ hasWebhookUrl: true, notify: true, cacheMissed: true })).toBe('!mnw');
    expect(packHints({ notify: true, timingOrigin: 12.5 })).toBe('{"notify":true,"timingOrigin":12.5}');
    for (const hints of [{}, { cacheMissed: true, notify: true, hasWebhookUrl: true }, { notify: true, timingOrigin: 12.5 }])
      expect(unpackHints(packHints(hints))).toEqual(hints);
  });

  it('withdraws a cancelled held job, and not a released one', async () => {
    const { fair } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1 });
    const key = shard();
    const [running, held, after] = ids(3);
    await fair.admit(
      key,
      [running, held, after].map((id) => ({ id: id!, customerId: 'A', weight: 1 })),
    );
    expect(await fair.withdraw(key, held!, 'A')).toBe(true);
    expect(await fair.withdraw(key, running!, 'A')).toBe(false);
    expect(await fair.release(key, [{ id: running!, customerId: 'A', workMs: 1 }])).toEqual([
      { id: after, customerId: 'A', hints: '', backlogged: false },
    ]);
    expect(await fair.withdraw(key, after!, 'A')).toBe(false);
    expect(await fair.release(key, [{ id: after!, customerId: 'A', workMs: 1 }])).toEqual([]);
  });

  it('releases at once in an at-once admission, and leaves out (neither holds nor delays) what it would hold', async () => {
    const { fair, clock } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1 });
    const key = shard();
    const [first, second, later] = ids(3);
    expect(await fair.admit(key, [{ id: first!, customerId: 'A', weight: 1 }], { atOnceOnly: true })).toEqual([first]);
    // The window is full: an ordinary admission would hold it; this one leaves it out of the shard.
    expect(await fair.admit(key, [{ id: second!, customerId: 'A', weight: 1 }], { atOnceOnly: true })).toEqual([]);
    expect(
      await fair.admit(key, [{ id: later!, customerId: 'A', weight: 1, delayUntil: clock.now + 60_000 }], { atOnceOnly: true }),
    ).toEqual([]);
    expect(await heldIds(redis, key, 'A')).toEqual([]);
    expect(await redis.zcard(fairShareKey(key, 'delayed'))).toBe(0);
    expect(await redis.hget(fairShareKey(key, 'count'), 'A')).toBe('1');
    // Admitted again once its row is stored, it is held, and released when the first finishes.
    expect(await fair.admit(key, [{ id: second!, customerId: 'A', weight: 1 }])).toEqual([]);
    expect(await heldIds(redis, key, 'A')).toEqual([second]);
    expect((await fair.release(key, [{ id: first!, customerId: 'A', workMs: 1 }])).map((job) => job.id)).toEqual([second]);
  });

  it('withdraws a released job that was never sent to BullMQ: its slot in the window and its count are freed', async () => {
    const { fair } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1 });
    const key = shard();
    const [unsent, next] = ids(2);
    expect(await fair.admit(key, [{ id: unsent!, customerId: 'A', weight: 1 }], { atOnceOnly: true })).toEqual([unsent]);
    // Without `unsent` a released job stays in flight (it is running).
    expect(await fair.withdraw(key, unsent!, 'A')).toBe(false);
    expect(await fair.withdraw(key, unsent!, 'A', { unsent: true })).toBe(true);
    expect(await fair.withdraw(key, unsent!, 'A', { unsent: true })).toBe(false);
    expect(await redis.zcard(fairShareKey(key, 'inflight'))).toBe(0);
    expect(await redis.hget(fairShareKey(key, 'count'), 'A')).toBeNull();
    expect(await fair.admit(key, [{ id: next!, customerId: 'A', weight: 1 }], { atOnceOnly: true })).toEqual([next]);
  });

  describe('repair, against the shard queue', () => {
    const queues: Queue[] = [];
    /** A BullMQ queue of its own; the shard's fair keys share its qualified name (and hash tag). */
    const shardQueue = () => {
      const queue = new Queue(`{t-${randomUUID().slice(0, 8)}}`, { connection: redis.duplicate(), prefix });
      queues.push(queue);
      return { queue, key: queue.qualifiedName };
    };
    afterAll(async () => {
      for (const queue of queues) {
        await queue.obliterate({ force: true });
        await queue.close();
      }
    });

    it('re-lanes what a flush of the fair keys lost, skipping jobs BullMQ holds', async () => {
      const { fair } = engine({ windowMs: 2, minInflight: 2, defaultCostMs: 1, graceMs: 0 });
      const { queue, key } = shardQueue();
      const jobs = ids(6).map((id) => ({ id, customerId: 'A', weight: 1 }));
      const released = await fair.admit(key, jobs);
      expect(released).toHaveLength(2);
      await queue.add('invoke', {}, { jobId: released[0]! });

      expect(await deleteKeys(redis, `${key}:fair:*`)).toBeGreaterThan(0);
      expect(await fair.release(key, [])).toEqual([]);

      const relaned = await fair.relane(key, jobs);
      expect(relaned).toEqual(jobs.map((job) => job.id).filter((id) => id !== released[0]));
      expect(await fair.relane(key, jobs)).toEqual([]);
      const out = await fair.release(key, []);
      expect(out.map((job) => job.id)).toEqual(relaned.slice(0, 2));
    });

    it("takes a job without a priority as held while its customer's lane list has entries, unless this pass rebuilt the list", async () => {
      const { fair } = engine({ windowMs: 1, minInflight: 1, defaultCostMs: 1, graceMs: 0 });
      const { key } = shardQueue();
      const jobs = ids(7).map((id) => ({ id, customerId: 'A', weight: 1 }));
      const [running] = await fair.admit(key, jobs.slice(0, 3));
      // Held (or running), as far as a pass can tell without searching the lane's list: nothing is put back.
      expect(await fair.relane(key, jobs.slice(1, 3), { pass: 'first' })).toEqual([]);
      expect(await heldIds(redis, key, 'A')).toEqual(jobs.slice(1, 3).map((job) => job.id));

      // Redis lost the lanes: one pass rebuilds them over several pages, and a later pass does not repeat it.
      await deleteKeys(redis, `${key}:fair:*`);
      const pages = [jobs.slice(1, 4), jobs.slice(4, 7)];
      expect(await fair.relane(key, pages[0]!, { pass: 'second' })).toEqual(pages[0]!.map((job) => job.id));
      expect(await fair.relane(key, pages[1]!, { pass: 'second' })).toEqual(pages[1]!.map((job) => job.id));
      expect(await fair.relane(key, pages[1]!, { pass: 'third' })).toEqual([]);
      expect(await heldIds(redis, key, 'A')).toEqual(jobs.slice(1).map((job) => job.id));

      // A caller that knows (a resumed job it just took out of BullMQ) puts it back whatever the list holds.
      expect(await fair.relane(key, [jobs[0]!], { known: true })).toEqual([running]);
      // Once the list drains, a lost job goes back on the next pass.
      let inFlight: string[] = [];
      for (let calls = 0; calls < 20 && (calls === 0 || inFlight.length > 0); calls++)
        inFlight = (
          await fair.release(
            key,
            inFlight.map((id) => ({ id, customerId: 'A', workMs: 1 })),
          )
        ).map((job) => job.id);
      expect(await heldIds(redis, key, 'A')).toEqual([]);
      expect(await fair.relane(key, [jobs[6]!], { pass: 'fourth' })).toEqual([jobs[6]!.id]);
    });

    it('reconcile heals an in-flight id whose BullMQ job was never added, and puts that job back into its lane', async () => {
      const { fair, clock } = engine({ windowMs: 2, minInflight: 2, defaultCostMs: 1, graceMs: 1000 });
      const { queue, key } = shardQueue();
      const [kept, lost, waiting] = ids(3);
      expect(
        await fair.admit(
          key,
          [kept!, lost!, waiting!].map((id) => ({ id, customerId: 'B', weight: 1 })),
        ),
      ).toEqual([kept, lost]);
      await queue.add('invoke', {}, { jobId: kept! });
      // `lost` never reached BullMQ (its worker died between pop and add): the window stays full…
      expect(await fair.release(key, [])).toEqual([]);
      // …and within the grace reconcile leaves it alone (its add may be under way).
      expect(await fair.reconcile(key)).toBe(0);
      clock.now += 1001;
      expect(await fair.reconcile(key)).toBe(1);
      // `lost` waits behind `waiting` in B's lane; its slot went to `waiting`.
      expect(await heldIds(redis, key, 'B')).toEqual([waiting, lost]);
      expect(await fair.release(key, [])).toEqual([{ id: waiting, customerId: 'B', hints: '', backlogged: true }]);
      expect(await redis.zscore(fairShareKey(key, 'inflight'), kept!)).not.toBeNull();
      expect(await fair.release(key, [{ id: kept!, customerId: 'B', workMs: 1 }])).toEqual([
        { id: lost, customerId: 'B', hints: '', backlogged: false },
      ]);
    });

    it('names a bundle for the jobs of one customer a release call takes together, and reconcile follows it', async () => {
      const { fair, clock } = engine({ windowMs: 100, minInflight: 6, defaultCostMs: 1, graceMs: 1000, bundleSize: 2 });
      const { queue, key } = shardQueue();
      const jobs = ids(6);
      const customerOf = (index: number) => (index < 5 ? 'A' : 'B');
      // Held first (the window is full of another customer's job), then released together.
      const [blocker] = ids(1);
      await fair.admit(key, [{ id: blocker!, customerId: 'C', weight: 1 }]);
      const admitted = await fair.admit(
        key,
        jobs.map((id, i) => ({ id, customerId: customerOf(i), weight: 1 })),
      );
      expect(admitted).toEqual(jobs);
      await fair.release(key, [{ id: blocker!, customerId: 'C' }, ...jobs.map((id, i) => ({ id, customerId: customerOf(i) }))]);
      expect(
        await fair.relane(
          key,
          jobs.map((id, i) => ({ id, customerId: customerOf(i), weight: 1 })),
          { known: true },
        ),
      ).toHaveLength(6);
      const released = await fair.release(key, []);
      const bundleOf = new Map(released.map((job) => [job.id, job.bundleId]));
      // A's five in bundles of at most two, in lane order; B's one alone.
      const [first, second, third] = [bundleOf.get(jobs[0]!), bundleOf.get(jobs[2]!), bundleOf.get(jobs[4]!)];
      expect(first).toMatch(/^bundle-[0-9a-f]{16}-A-0$/);
      expect(bundleOf.get(jobs[1]!)).toBe(first);
      expect(second).toMatch(/-A-1$/);
      expect(bundleOf.get(jobs[3]!)).toBe(second);
      expect(third).toMatch(/-A-2$/);
      expect(bundleOf.get(jobs[5]!)).toBeUndefined();

      // Past the grace: A's first bundle is in BullMQ and waits; its second finished; its third was never added
      // (nor has its member a job of its own); B's job is in BullMQ alone.
      await queue.add('invoke', {}, { jobId: first! });
      await queue.add('invoke', {}, { jobId: second! });
      await redis.hset(queue.toKey(second!), 'finishedOn', String(Date.now()));
      await queue.add('invoke', {}, { jobId: jobs[5]! });
      clock.now += 1001;
      expect(await fair.reconcile(key)).toBe(3);
      const inflight = await redis.zrange(fairShareKey(key, 'inflight'), '0', '-1');
      expect(inflight.sort()).toEqual([jobs[0]!, jobs[1]!, jobs[5]!].sort());
      // Only the member of the bundle never added goes back into A's lane.
      expect(await heldIds(redis, key, 'A')).toEqual([jobs[4]]);
    });
  });
});

describe('fair-share helpers', () => {
  it('orders UUIDv7 ids by their creation second', () => {
    const id = uuidv7();
    expect(Math.abs(laneSeq(id) - Math.floor(Date.now() / 1000))).toBeLessThanOrEqual(1);
    expect(laneSeq('not-a-uuid')).toBe(0);
  });

  it('weighs a tier by FAIR_WEIGHTS, 1 when unnamed', () => {
    expect(fairWeight('pro', weights)).toBe(4);
    expect(fairWeight<string>('unknown', weights)).toBe(1);
  });
});
