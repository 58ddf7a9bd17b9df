import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fairShareKey } from '../../queue/fair-share/fair-share.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * A single submit asks its shard's fair share to release the job while the row is inserted (queue/submit-job.ts
 * `probeAdmission`). What the customer notices: a released job is in flight once the 202 is out (and in BullMQ once
 * the add that follows the 202 has settled: queue/pending-enqueues.ts), and a submit
 * that stored no job (a missing substrate, a replayed Idempotency-Key) leaves nothing counted in flight, which
 * would otherwise hold its slot in the window until reconcile.
 */
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let customerId: string;
let substrateId: string;

beforeAll(async () => {
  // No workers: what a submit released stays in flight, where the test can count it. No sweeps either.
  // One shard: a customer's submits all meet the same window.
  app = await startTestApp({ FAIR_SHARING: 'true', SWEEPER_INTERVAL_MS: '3600000', QUEUE_SHARDS: '1' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  customerId = (await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id as string;
  substrateId = await createExpressionSubstrate(request, alice.accessToken, 'x + 1');
}, 60_000);

afterAll(async () => {
  await app?.close();
});

/** Alice's released, unfinished jobs over every invoke shard. */
async function inFlight(): Promise<string[]> {
  const ids: string[] = [];
  for (const shard of app.deps.queues.ofType('invoke')) {
    const released = await app.deps.redis.hgetall(fairShareKey(shard.qualifiedName, 'released'));
    for (const [id, record] of Object.entries(released)) if (record.split('|')[1] === customerId) ids.push(id);
  }
  return ids.sort();
}

const invoke = (id: string, headers: Record<string, string> = {}) =>
  request('POST', `/api/v1/substrates/${id}/invoke`, { token: alice.accessToken, body: { parameters: { x: 1 } }, headers });

describe('a single submit on a fair-shared queue', () => {
  it('is released and in BullMQ when answered; a submit to a missing substrate answers 404 and leaves nothing in flight', async () => {
    const accepted = await invoke(substrateId);
    expect(accepted.status, accepted.text).toBe(202);
    const id = accepted.body.id as string;
    expect(await inFlight()).toEqual([id]);
    await app.deps.pendingEnqueues.settled(id);
    const queued = await app.deps.queues.forJob('invoke', id).getJob(id);
    expect(queued?.data).toMatchObject({ customerId });

    const missing = await invoke('0x00000000deadbeef');
    expect(missing.status, missing.text).toBe(404);
    expect(missing.body.type).toContain('not-found');
    expect(await inFlight()).toEqual([id]);
  });

  it("answers 404 for another customer's substrate, and leaves nothing of Alice's in flight", async () => {
    const before = await inFlight();
    const bob = await registerUser(request);
    const bobsSubstrate = await createExpressionSubstrate(request, bob.accessToken, 'x + 2');
    const refused = await invoke(bobsSubstrate);
    expect(refused.status, refused.text).toBe(404);
    expect(await inFlight()).toEqual(before);
  });

  it('counts a replayed Idempotency-Key once: the replay answers the first job and releases nothing more', async () => {
    const before = await inFlight();
    const headers = { 'idempotency-key': `probe-${Date.now()}` };
    const first = await invoke(substrateId, headers);
    expect(first.status, first.text).toBe(202);
    const replay = await invoke(substrateId, headers);
    expect(replay.status, replay.text).toBe(202);
    expect(replay.body.id).toBe(first.body.id);
    expect(await inFlight()).toEqual([...before, first.body.id as string].sort());
  });

  it('admits each submit of a backlogged customer once: no probe while its last submit there was held', async () => {
    const [shard] = app.deps.queues.ofType('invoke');
    const engine = app.deps.fair!.of(shard!)!;
    const admit = engine.admit.bind(engine);
    const calls: Array<'probe' | 'hold'> = [];
    engine.admit = (key, jobs, options) => {
      calls.push(options?.atOnceOnly ? 'probe' : 'hold');
      return admit(key, jobs, options);
    };
    try {
      // No workers: the shard's window fills, and then Alice's submits are held.
      // Each submit's add (where a held one is admitted) follows its 202: it is awaited, so its calls are its own.
      const submitted = async () => {
        const response = await invoke(substrateId);
        expect(response.status).toBe(202);
        await app.deps.pendingEnqueues.settled(response.body.id as string);
      };
      let held = false;
      for (let i = 0; i < 100 && !held; i++) {
        calls.length = 0;
        await submitted();
        held = calls.includes('hold');
      }
      expect(held, 'a submit was held').toBe(true);
      expect(calls).toEqual(['probe', 'hold']);
      calls.length = 0;
      for (let i = 0; i < 5; i++) await submitted();
      expect(calls).toEqual(['hold', 'hold', 'hold', 'hold', 'hold']);
    } finally {
      engine.admit = admit;
    }
  });
});
