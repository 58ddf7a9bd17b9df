import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import { openSse } from '../helpers/sse.js';
import type { TestApp } from '../helpers/test-app.js';
import { useTestApp } from '../helpers/suite.js';

let substrateId: string;

// FIFO: the tests move a delayed job through BullMQ (progress, promote); fair sharing holds it in the shard's delayed set.
const suite = useTestApp({ workers: true, users: 2, env: { FAIR_SHARING: 'false' } });
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ app, request } = suite);
  [alice, bob] = suite.users as [TestUser, TestUser];
  const created = await request('POST', '/api/v1/substrates', {
    token: alice.accessToken,
    body: { expression_type: 'expression', expression: 'x * y' },
  });
  substrateId = created.body.substrate_id;
});

/** A job parked in BullMQ's delayed set, so the test decides when it runs (by promoting it). */
async function delayedJob(parameters: Record<string, number>): Promise<string> {
  const response = await request('POST', '/api/v1/jobs', {
    token: alice.accessToken,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters }, delay_ms: 3_600_000 },
  });
  expect(response.status).toBe(202);
  expect(response.body.state).toBe('delayed');
  // The add follows the 202 (queue/pending-enqueues.ts): the job is in BullMQ once it has settled.
  await app.deps.pendingEnqueues.settled(response.body.id);
  return response.body.id;
}

const eventsUrl = (id: string) => `${app.baseUrl}/api/v1/jobs/${id}/events`;

describe('GET /jobs/:id/events', () => {
  it('streams the current state, progress and each state change in order, then the finished job, and ends', async () => {
    const id = await delayedJob({ x: 6, y: 7 });
    const stream = await openSse(eventsUrl(id), { token: alice.accessToken });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await stream.next()).toEqual({ event: 'state', id: undefined, data: { id, state: 'delayed', progress: 0 } });

    const queued = await bullJob(app.deps.queues, 'invoke', id);
    // The same call a processor's ctx.progress makes.
    await queued!.updateProgress(40);
    expect(await stream.next()).toEqual({ event: 'progress', id: undefined, data: { id, state: 'delayed', progress: 40 } });

    await queued!.promote();
    const rest = await stream.rest();
    expect(rest.map((event) => `${event.event}:${event.data.state}`)).toEqual(['state:queued', 'state:active', 'state:completed']);
    const final = rest.at(-1)!;
    expect(final.id).toBe('final');
    expect(final.data).toMatchObject({
      id,
      type: 'invoke',
      state: 'completed',
      attempts_made: 1,
      result: { substrate_id: substrateId, result: 42 },
    });
    expect(final.data.finished_at).toEqual(expect.any(String));
  });

  it('gives a job that already finished one final event, then closes', async () => {
    const done = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=10' },
      body: { parameters: { x: 2, y: 3 } },
    });
    expect(done.body.state).toBe('completed');
    const stream = await openSse(eventsUrl(done.body.id), { token: alice.accessToken });
    const events = await stream.rest();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: 'state', id: 'final', data: { id: done.body.id, state: 'completed', result: { result: 6 } } });
  });

  it('answers 204 to an EventSource reconnecting after the final event, so it stops reconnecting', async () => {
    const done = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=10' },
      body: { parameters: { x: 1, y: 1 } },
    });
    const reconnect = await request('GET', `/api/v1/jobs/${done.body.id}/events`, {
      token: alice.accessToken,
      headers: { 'last-event-id': 'final' },
    });
    expect(reconnect.status).toBe(204);
  });

  it('ends a failed job with its error', async () => {
    const failing = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x / 0' },
    });
    const id = (
      await request('POST', '/api/v1/jobs', {
        token: alice.accessToken,
        body: { type: 'invoke', payload: { substrate_id: failing.body.substrate_id, parameters: { x: 1 } }, delay_ms: 3_600_000 },
      })
    ).body.id;
    await app.deps.pendingEnqueues.settled(id);
    const stream = await openSse(eventsUrl(id), { token: alice.accessToken });
    expect((await stream.next())?.data.state).toBe('delayed');
    await (await bullJob(app.deps.queues, 'invoke', id))!.promote();
    const final = (await stream.rest()).at(-1)!;
    expect(final.data).toMatchObject({ id, state: 'failed', error: expect.stringMatching(/finite|division/) });
  });

  it("answers 404 for another customer's job, without streaming", async () => {
    const id = await delayedJob({ x: 1, y: 2 });
    expectProblem(await request('GET', `/api/v1/jobs/${id}/events`, { token: bob.accessToken }), 404, 'not-found');
    expect(app.deps.waiter.listenerCount(id)).toBe(0);
  });

  it('rejects a job id that is not a UUID with 400', async () => {
    expectProblem(await request('GET', '/api/v1/jobs/not-a-uuid/events', { token: alice.accessToken }), 400, 'validation', ['params.id']);
  });

  it('rejects a request without credentials with 401', async () => {
    const id = await delayedJob({ x: 1, y: 3 });
    expectProblem(await request('GET', `/api/v1/jobs/${id}/events`), 401, 'unauthorized');
  });

  it('removes its listener when the client disconnects', async () => {
    const id = await delayedJob({ x: 3, y: 3 });
    const stream = await openSse(eventsUrl(id), { token: alice.accessToken });
    expect((await stream.next())?.data.state).toBe('delayed');
    expect(app.deps.waiter.listenerCount(id)).toBe(1);
    stream.close();
    await waitFor(async () => app.deps.waiter.listenerCount(id) === 0);
  });

  // Last: it closes this file's waiter, as the API's shutdown does.
  it('ends open streams when the API process shuts down, so clients reconnect elsewhere', async () => {
    const id = await delayedJob({ x: 4, y: 4 });
    const stream = await openSse(eventsUrl(id), { token: alice.accessToken });
    expect((await stream.next())?.data.state).toBe('delayed');
    await app.deps.waiter.close();
    expect(await stream.next()).toBeNull();
    expect(app.deps.waiter.listenerCount(id)).toBe(0);
  });
});
