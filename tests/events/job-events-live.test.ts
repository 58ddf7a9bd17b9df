import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import { openSse, type SseEvent } from '../helpers/sse.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * Live events of GET /jobs/:id/events (BullMQ's event stream read by the API's JobWaiter), as opposed to what
 * the heartbeat's re-read of the row (every 15 s) would find anyway: each wait here is far below a heartbeat.
 */

/** How soon a change must reach an open stream: live, not at the next heartbeat (15 s). */
const liveMs = 2000;

// FIFO (the tests promote delayed jobs in BullMQ; fair sharing holds them in its own delayed set). One shard, so a
// bulk's bundle and the next job share one queue, and one event stream, under TEST_REDIS_CLUSTER=1 too.
const suite = useTestApp({ workers: true, users: 1, env: { FAIR_SHARING: 'false', QUEUE_SHARDS: '1' } });
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let substrateId: string;

beforeAll(async () => {
  ({ app, request } = suite);
  [alice] = suite.users as [TestUser];
  const created = await request('POST', '/api/v1/substrates', {
    token: alice.accessToken,
    body: { expression_type: 'expression', expression: 'x * y' },
  });
  substrateId = created.body.substrate_id;
});

const eventsUrl = (base: string, id: string) => `${base}/api/v1/jobs/${id}/events`;

/** A job parked in BullMQ's delayed set, so the test decides when it runs (by promoting it). */
async function delayedJob(parameters: Record<string, number>): Promise<string> {
  const response = await request('POST', '/api/v1/jobs', {
    token: alice.accessToken,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters }, delay_ms: 3_600_000 },
  });
  expect(response.status).toBe(202);
  await app.deps.pendingEnqueues.settled(response.body.id);
  return response.body.id;
}

/** Promotes delayed job `id` and reads its stream to the end: each event must come within `liveMs`. */
async function promoteAndRead(id: string, stream: Awaited<ReturnType<typeof openSse>>): Promise<{ states: string[]; ms: number }> {
  const promoted = Date.now();
  await (await bullJob(app.deps.queues, 'invoke', id))!.promote();
  const rest = await stream.rest(liveMs);
  return { states: rest.map((event) => event.data.state), ms: Date.now() - promoted };
}

/** The states an event stream went through, in order (progress events carry the state too). */
const statesOf = (events: SseEvent[]) => events.map((event) => event.data.state as string);

/** Rank of a non-final state; a stream that moves to a lower one went backwards. */
const rank: Record<string, number> = { delayed: 0, queued: 1, active: 2, completed: 3, failed: 3, cancelled: 3 };

// First: it needs to be the first stream on the batch queue in this process (the reader opens 5 s back).
describe('a stream opened on an active job (the first on its queue in this process)', () => {
  it('never goes backwards nor repeats a state, though the reader replays the last seconds of events', async () => {
    // ~15 ms an item (the square of a 300-element list): a few seconds of work, so the stream opens while the batch runs.
    const slow = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'l.map(a, l.filter(b, b < a).size()).size() + x' },
    });
    const list = Array.from({ length: 300 }, (_, i) => i % 10);
    const invocations = Array.from({ length: 200 }, (_, x) => ({ substrate_id: slow.body.substrate_id, parameters: { l: list, x } }));
    const submitted = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'batch', payload: { invocations } },
    });
    expect(submitted.status).toBe(202);
    const id: string = submitted.body.id;
    // Batches are written `active` as they start (activeAtStart); the reader replays their waiting and active events.
    await waitFor(
      async () => (await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken })).body.state === 'active',
      10_000,
      10,
    );
    const stream = await openSse(eventsUrl(app.baseUrl, id), { token: alice.accessToken });
    const first = await stream.next();
    expect(first?.data.state).toBe('active');
    const events = [first!, ...(await stream.rest(30_000))];
    expect(events.at(-1)).toMatchObject({ id: 'final', data: { id, state: 'completed' } });

    const stateEvents = events.filter((event) => event.event === 'state');
    expect(statesOf(stateEvents)).toEqual(['active', 'completed']);
    const states = statesOf(events);
    for (let i = 1; i < states.length; i++) expect(rank[states[i]!]!, `${states.join(', ')}`).toBeGreaterThanOrEqual(rank[states[i - 1]!]!);
  });
});

describe('live events after bundles ran on the queue', () => {
  it('hears a job move queued, active, completed within 2 s of its promotion, after a bulk of 3 completed', async () => {
    // A stream first, so this process reads the invoke queue's events before the bulk's bundle runs.
    const before = await delayedJob({ x: 2, y: 2 });
    const opened = await openSse(eventsUrl(app.baseUrl, before), { token: alice.accessToken });
    expect((await opened.next())?.data.state).toBe('delayed');
    expect((await promoteAndRead(before, opened)).states).toEqual(['queued', 'active', 'completed']);

    const invoke = (x: number) => ({ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x, y: 3 } } });
    const bulk = await request('POST', '/api/v1/jobs/bulk', {
      token: alice.accessToken,
      headers: { prefer: 'wait=10' },
      body: { jobs: [invoke(1), invoke(2), invoke(3)] },
    });
    expect(bulk.status).toBe(200);
    expect(bulk.body.items.map((item: { state: string }) => item.state)).toEqual(['completed', 'completed', 'completed']);
    // Its members ran in a bundle, which announces each on the queue's event stream (once their rows, which
    // answered the wait, are stored) as BullMQ writes a `completed` event: with the `returnvalue` QueueEvents parses.
    const members = new Set(bulk.body.items.map((item: { id: string }) => item.id));
    const announced = await waitFor(async () => {
      const entries = await app.deps.redis.xrange(app.deps.queues.forJob('invoke', before).toKey('events'), '-', '+');
      const found = entries.map(([, fields]) => fields).filter((fields) => fields[1] === 'completed' && members.has(fields[3]));
      return found.length === 3 && found;
    }, 5000);
    for (const fields of announced) expect(fields).toContain('returnvalue');

    const id = await delayedJob({ x: 6, y: 7 });
    const stream = await openSse(eventsUrl(app.baseUrl, id), { token: alice.accessToken });
    expect((await stream.next())?.data.state).toBe('delayed');
    const { states, ms } = await promoteAndRead(id, stream);
    expect(states).toEqual(['queued', 'active', 'completed']);
    expect(ms).toBeLessThan(liveMs);
  });

  it('lower-cases an upper-case job id, so its stream hears the job live', async () => {
    const id = await delayedJob({ x: 3, y: 4 });
    const stream = await openSse(eventsUrl(app.baseUrl, id.toUpperCase()), { token: alice.accessToken });
    expect(stream.status).toBe(200);
    expect(await stream.next()).toMatchObject({ event: 'state', data: { id, state: 'delayed' } });
    const { states, ms } = await promoteAndRead(id, stream);
    expect(states).toEqual(['queued', 'active', 'completed']);
    expect(ms).toBeLessThan(liveMs);
  });

  it('keeps hearing events after a malformed entry on the queue event stream (the reader is reopened past it)', async () => {
    const id = await delayedJob({ x: 5, y: 5 });
    const stream = await openSse(eventsUrl(app.baseUrl, id), { token: alice.accessToken });
    expect((await stream.next())?.data.state).toBe('delayed');
    // `completed` without `returnvalue`: BullMQ's QueueEvents fails on JSON.parse of it and its read loop ends.
    const events = app.deps.queues.forJob('invoke', id).toKey('events');
    await app.deps.redis.xadd(events, '*', 'event', 'completed', 'jobId', 'not-a-job');
    // The job's events come right behind it, maybe in the same read: none may be lost.
    const { states, ms } = await promoteAndRead(id, stream);
    expect(states).toEqual(['queued', 'active', 'completed']);
    expect(ms).toBeLessThan(liveMs);
  });
});

describe('cancelling a delayed job with fair sharing on', () => {
  // Fair sharing (the default) holds a delayed job in its shard's delayed set, not in BullMQ. No workers: it stays there.
  let fairApp: TestApp;
  let fairRequest: ReturnType<typeof httpClient>;
  let bob: TestUser;
  beforeAll(async () => {
    fairApp = await startTestApp({ FAIR_SHARING: 'true' });
    fairRequest = httpClient(fairApp.baseUrl);
    bob = await registerUser(fairRequest);
  });
  afterAll(async () => {
    await fairApp?.close();
  });

  it('ends its stream with `cancelled` within 2 s', async () => {
    const substrate = await fairRequest('POST', '/api/v1/substrates', {
      token: bob.accessToken,
      body: { expression_type: 'expression', expression: 'x + 1' },
    });
    const submitted = await fairRequest('POST', '/api/v1/jobs', {
      token: bob.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrate.body.substrate_id, parameters: { x: 1 } }, delay_ms: 3_600_000 },
    });
    expect(submitted.body.state).toBe('delayed');
    const id: string = submitted.body.id;
    await fairApp.deps.pendingEnqueues.settled(id);
    expect(await bullJob(fairApp.deps.queues, 'invoke', id)).toBeUndefined();

    const stream = await openSse(eventsUrl(fairApp.baseUrl, id), { token: bob.accessToken });
    expect((await stream.next())?.data.state).toBe('delayed');
    const cancelled = Date.now();
    expect((await fairRequest('DELETE', `/api/v1/jobs/${id}`, { token: bob.accessToken })).status).toBe(200);
    const rest = await stream.rest(liveMs);
    expect(rest).toHaveLength(1);
    expect(rest[0]).toMatchObject({ event: 'state', id: 'final', data: { id, state: 'cancelled' } });
    expect(Date.now() - cancelled).toBeLessThan(liveMs);
  });
});
