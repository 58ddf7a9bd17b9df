import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import type { TestApp } from '../helpers/test-app.js';
import { useTestApp } from '../helpers/suite.js';
import { JobWaiter } from '../../api/job-waiter.js';
import { waitAnswers, waitAnswersSince } from '../helpers/job-waits.js';
import type { JobRecord } from '../../db/entities/job-record.entity.js';
import { findJob } from '../../db/jobs/find-jobs.js';
import { jobColumns } from '../../db/jobs/job-columns.js';
import { finishedJobsChannel } from '../../queue/job-notices.js';
import { stageMarksKey } from '../../lib/stage-marks.js';

let substrateId: string;

// FIFO: a test finds each job in BullMQ under its id (fair sharing holds a delayed job in the shard's delayed set).
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

describe('submit and poll', () => {
  it('answers Prefer: wait=5 with 200 and the result 35', async () => {
    const response = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 5, y: 7 } },
    });
    expect(response.status).toBe(200);
    expect(response.body.state).toBe('completed');
    expect(response.body.result).toMatchObject({ substrate_id: substrateId, result: 35 });
    expect(response.headers.get('location')).toBe(`/api/v1/jobs/${response.body.id}`);
  });

  it('answers Prefer: wait with the job exactly as stored (what GET /jobs/:id then shows)', async () => {
    const waited = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 8, y: 9 } },
    });
    expect(waited.status).toBe(200);
    const polled = await request('GET', `/api/v1/jobs/${waited.body.id}`, { token: alice.accessToken });
    expect(waited.body).toEqual(polled.body);
    expect(waited.body).toMatchObject({ state: 'completed', result: { result: 72 }, finished_at: expect.any(String) });
  });

  it('still answers a wait whose finished-job notice never arrives, from the stored row its poll reads', async () => {
    const accepted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 2, y: 21 } },
    });
    const [row] = await app.sql<JobRecord>(`select ${jobColumns} from jobs where id = $1`, [accepted.body.id]);
    // A waiter that never subscribed to the notices: only its poll of PostgreSQL can see the outcome.
    const deaf = new JobWaiter(app.config.redis, app.config.queuePrefix, () => []);
    const em = app.deps.orm.em.fork();
    const before = await waitAnswers();
    // The row as it was accepted (the worker may already have finished it by now).
    const finished = await deaf.waitForFinal({ ...row!, state: 'queued' }, 5000, () => findJob(em, row!.customerId, row!.id));
    expect(finished).toMatchObject({ id: accepted.body.id, state: 'completed', result: { result: 42 } });
    expect(await waitAnswersSince(before)).toEqual({ notice: 0, poll: 1, timeout: 0 });
    await deaf.close();
  });

  it('uses a finished-job notice that arrived after the watch began but before the request started waiting', async () => {
    const accepted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 3, y: 14 } },
    });
    const [row] = await waitFor(async () => {
      const rows = await app.sql<JobRecord>(`select ${jobColumns} from jobs where id = $1 and state = 'completed'`, [accepted.body.id]);
      return rows.length > 0 ? rows : null;
    });
    // As a waiting request does: watch first (before enqueueing), then the worker's notice, then the wait.
    const watch = app.deps.waiter.watch(accepted.body.id);
    await app.sql('select pg_notify($1, $2)', [finishedJobsChannel(app.config.queuePrefix), JSON.stringify(row)]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = await waitAnswers();
    const finished = await watch.until({ ...row!, state: 'queued' }, 5000, async () => null);
    watch.stop();
    expect(finished).toMatchObject({ id: accepted.body.id, state: 'completed', result: { result: 42 } });
    expect(await waitAnswersSince(before)).toEqual({ notice: 1, poll: 0, timeout: 0 });
  });

  it('answers 202 with a Location, and polling reaches completed with the result stored in PostgreSQL', async () => {
    const response = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 6, y: 7 } },
    });
    expect(response.status).toBe(202);
    expect(response.body).toMatchObject({ type: 'invoke', state: 'queued', links: { self: `/api/v1/jobs/${response.body.id}` } });
    const location = response.headers.get('location') as string;
    const done = await waitFor(async () => {
      const polled = await request('GET', location, { token: alice.accessToken });
      return polled.body.state === 'completed' ? polled : null;
    });
    expect(done.body.result.result).toBe(42);
    expect(done.body.attempts_made).toBe(1);
    const [row] = await app.sql<{ state: string; result: { result: number } }>('select state, result from jobs where id = $1', [
      response.body.id,
    ]);
    expect(row).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('uses the job id as the BullMQ job id', async () => {
    const response = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 2 } }, delay_ms: 60_000 },
    });
    expect(response.status).toBe(202);
    expect(response.body.state).toBe('delayed');
    // The add follows the 202 (queue/pending-enqueues.ts): read BullMQ once it is in.
    await app.deps.pendingEnqueues.settled(response.body.id);
    const queued = await bullJob(app.deps.queues, 'invoke', response.body.id);
    expect(queued?.id).toBe(response.body.id);
  });

  it('fails a job whose expression errors, without retrying it', async () => {
    const created = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x / 0' },
    });
    const response = await request('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 1 } },
    });
    expect(response.status).toBe(200);
    expect(response.body.state).toBe('failed');
    expect(response.body.error).toMatch(/not a finite number|division/);
    expect(response.body.attempts_made).toBe(1);
  });

  it('lists jobs newest first with a working cursor and filters', async () => {
    for (let i = 0; i < 3; i++) {
      await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
        token: bob.accessToken,
        body: { parameters: { x: i, y: 1 } },
      }).then(() => undefined);
    }
    const bobSubstrate = await request('POST', '/api/v1/substrates', {
      token: bob.accessToken,
      body: { expression_type: 'constant', value: 3 },
    });
    expect(bobSubstrate.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      await request('POST', `/api/v1/substrates/${bobSubstrate.body.substrate_id}/divide`, { token: bob.accessToken });
    }
    const first = await request('GET', '/api/v1/jobs?limit=2&type=divide', { token: bob.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toBeTypeOf('string');
    const second = await request('GET', `/api/v1/jobs?limit=2&type=divide&cursor=${first.body.next_cursor}`, { token: bob.accessToken });
    expect(second.body.items).toHaveLength(1);
    expect(second.body.next_cursor).toBeNull();
    const ids = [...first.body.items, ...second.body.items].map((job: { id: string }) => job.id);
    expect([...ids].sort().reverse()).toEqual(ids);
  });

  it("answers 404 for another customer's job, never 403", async () => {
    const response = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 1, y: 1 } },
    });
    const asBob = await request('GET', `/api/v1/jobs/${response.body.id}`, { token: bob.accessToken });
    expect(asBob.status).toBe(404);
    expect(asBob.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await request('DELETE', `/api/v1/jobs/${response.body.id}`, { token: bob.accessToken })).status).toBe(404);
    const bobsList = await request('GET', '/api/v1/jobs?limit=100', { token: bob.accessToken });
    expect(bobsList.body.items.map((job: { id: string }) => job.id)).not.toContain(response.body.id);
  });
});

describe('GET /jobs/:id?include=payload', () => {
  it('answers the payload only when asked for it; anything else to include is 400, and another customer still 404', async () => {
    const payload = { substrate_id: substrateId, parameters: { x: 6, y: 7 } };
    const submitted = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body: { type: 'invoke', payload } });
    const plain = await request('GET', `/api/v1/jobs/${submitted.body.id}`, { token: alice.accessToken });
    expect(plain.status).toBe(200);
    expect(plain.body).not.toHaveProperty('payload');
    const withPayload = await request('GET', `/api/v1/jobs/${submitted.body.id}?include=payload`, { token: alice.accessToken });
    expect(withPayload.status, withPayload.text).toBe(200);
    expect(withPayload.body).toMatchObject({ id: submitted.body.id, type: 'invoke', payload });
    for (const query of ['include=secrets', 'include=payload&include=payload', 'expand=payload']) {
      const refused = await request('GET', `/api/v1/jobs/${submitted.body.id}?${query}`, { token: alice.accessToken });
      expectProblem(refused, 400, 'validation');
      expect(refused.text).not.toContain('parameters');
    }
    expectProblem(await request('GET', `/api/v1/jobs/${submitted.body.id}?include=payload`, { token: bob.accessToken }), 404, 'not-found');
  });
});

describe('idempotency', () => {
  it('returns the same job for the same key and body', async () => {
    const body = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 2, y: 2 } } };
    const first = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body, headers: { 'idempotency-key': 'same-key-1' } });
    const second = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body, headers: { 'idempotency-key': 'same-key-1' } });
    expect(first.body.id).toBe(second.body.id);
    const [count] = await app.sql<{ n: string }>(`select count(*) as n from jobs where idempotency_key = 'same-key-1'`);
    expect(count?.n).toBe('1');
  });

  it('answers a replay with 202 as the first time, even once the job has finished; 200 only to Prefer: wait', async () => {
    const body = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 4, y: 5 } } };
    const headers = { 'idempotency-key': 'replay-after-finish' };
    const first = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body, headers });
    expect(first.status, first.text).toBe(202);
    await waitFor(
      async () => (await request('GET', `/api/v1/jobs/${first.body.id}`, { token: alice.accessToken })).body.state === 'completed',
    );
    const replay = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body, headers });
    expect(replay.status, replay.text).toBe(202);
    expect(replay.body).toEqual({
      id: first.body.id,
      type: 'invoke',
      state: 'completed',
      created_at: first.body.created_at,
      links: { self: `/api/v1/jobs/${first.body.id}` },
    });
    expect(replay.headers.get('location')).toBe(`/api/v1/jobs/${first.body.id}`);
    const waited = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body, headers: { ...headers, prefer: 'wait=5' } });
    expect(waited.status, waited.text).toBe(200);
    expect(waited.body).toMatchObject({ id: first.body.id, state: 'completed', result: { result: 20 } });
  });

  it('answers 422 for the same key with another body', async () => {
    await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 2 } } },
      headers: { 'idempotency-key': 'k-2' },
    });
    const reused = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 9, y: 9 } } },
      headers: { 'idempotency-key': 'k-2' },
    });
    expect(reused.status).toBe(422);
    expect(reused.body.errors[0].field).toBe('header.idempotency-key');
  });

  it('keeps keys per customer', async () => {
    const aliceJob = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 1, y: 1 } },
      headers: { 'idempotency-key': 'shared' },
    });
    const bobSub = await request('POST', '/api/v1/substrates', { token: bob.accessToken, body: { expression_type: 'constant', value: 1 } });
    const bobJob = await request('POST', `/api/v1/substrates/${bobSub.body.substrate_id}/invoke`, {
      token: bob.accessToken,
      body: { parameters: { x: 1, y: 1 } },
      headers: { 'idempotency-key': 'shared' },
    });
    expect(bobJob.status).toBe(202);
    expect(bobJob.body.id).not.toBe(aliceJob.body.id);
  });

  it("never answers one customer with another's job: the same key and the same body name one job per customer, alone or in bulk", async () => {
    const body = { dimension_values: [3, 4] };
    const send = (user: TestUser, headers: Record<string, string> = {}) =>
      request('POST', '/api/v1/substrates/multiply', {
        token: user.accessToken,
        body,
        headers: { 'idempotency-key': 'cross-tenant', ...headers },
      });
    const aliceFirst = await send(alice);
    const bobFirst = await send(bob);
    expect([aliceFirst.status, bobFirst.status]).toEqual([202, 202]);
    expect(bobFirst.body.id).not.toBe(aliceFirst.body.id);
    // Replays, in either order and with Prefer: wait, each name the replaying customer's own job.
    expect((await send(bob)).body.id).toBe(bobFirst.body.id);
    expect((await send(alice)).body.id).toBe(aliceFirst.body.id);
    const bobWaited = await send(bob, { prefer: 'wait=5' });
    expect(bobWaited.body.id).toBe(bobFirst.body.id);
    expectProblem(await request('GET', `/api/v1/jobs/${aliceFirst.body.id}`, { token: bob.accessToken }), 404, 'not-found');
    const keys = await app.sql<{ job_id: string }>(
      `select job_id from job_idempotency_keys where idempotency_key = 'cross-tenant' order by job_id`,
    );
    expect(keys.map((row) => row.job_id)).toEqual([aliceFirst.body.id, bobFirst.body.id].sort());

    // A bulk item with a key the other customer used makes its own job too, and its replay names that one.
    const item = { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [5, 6] } }, idempotency_key: 'cross-bulk' };
    const bulk = (user: TestUser) => request('POST', '/api/v1/jobs/bulk', { token: user.accessToken, body: { jobs: [item] } });
    const aliceBulk = await bulk(alice);
    const bobBulk = await bulk(bob);
    expect([aliceBulk.status, bobBulk.status], bobBulk.text).toEqual([202, 202]);
    expect(bobBulk.body.items[0].id).not.toBe(aliceBulk.body.items[0].id);
    expect((await bulk(bob)).body.items[0].id).toBe(bobBulk.body.items[0].id);
    expect((await bulk(alice)).body.items[0].id).toBe(aliceBulk.body.items[0].id);
  });
});

describe('cancel', () => {
  it('cancels a delayed job and takes it off the queue', async () => {
    const submitted = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'divide', payload: { substrate_id: substrateId }, delay_ms: 60_000 },
    });
    const cancelled = await request('DELETE', `/api/v1/jobs/${submitted.body.id}`, { token: alice.accessToken });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');
    expect(await bullJob(app.deps.queues, 'divide', submitted.body.id)).toBeUndefined();
  });

  it('shows a job cancelled before it ran with started_at = finished_at (a finished job always carries started_at)', async () => {
    const submitted = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'divide', payload: { substrate_id: substrateId }, delay_ms: 60_000 },
    });
    const queued = await request('GET', `/api/v1/jobs/${submitted.body.id}`, { token: alice.accessToken });
    expect(queued.body).not.toHaveProperty('started_at');
    const cancelled = await request('DELETE', `/api/v1/jobs/${submitted.body.id}`, { token: alice.accessToken });
    expect(cancelled.body).toMatchObject({
      state: 'cancelled',
      attempts_made: 0,
      started_at: expect.any(String),
      finished_at: expect.any(String),
    });
    expect(cancelled.body.started_at).toBe(cancelled.body.finished_at);
    const polled = await request('GET', `/api/v1/jobs/${submitted.body.id}`, { token: alice.accessToken });
    expect(polled.body).toMatchObject({
      state: 'cancelled',
      started_at: cancelled.body.finished_at,
      finished_at: cancelled.body.finished_at,
    });
  });

  it('answers 409 when the job already finished', async () => {
    const done = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 3, y: 3 } },
    });
    expect(done.body.state).toBe('completed');
    const again = await request('DELETE', `/api/v1/jobs/${done.body.id}`, { token: alice.accessToken });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ state: 'completed', detail: expect.stringMatching(/is already completed$/) });
  });

  it('answers a cancel racing the job to its end with 200 cancelled, or 409 naming the final state it reached', async () => {
    const submitted = await Promise.all(
      Array.from({ length: 20 }, (_, x) =>
        request('POST', `/api/v1/substrates/${substrateId}/invoke`, { token: alice.accessToken, body: { parameters: { x, y: 1 } } }),
      ),
    );
    const answers = await Promise.all(
      submitted.map((job) => request('DELETE', `/api/v1/jobs/${job.body.id}`, { token: alice.accessToken })),
    );
    for (const answer of answers) {
      if (answer.status === 200) expect(answer.body.state).toBe('cancelled');
      // Read before the cancel, the state had been `queued` or `active` in the 409 of a job that finished meanwhile.
      else
        expect({ status: answer.status, state: answer.body.state }).toEqual({
          status: 409,
          state: expect.stringMatching(/^(completed|failed)$/),
        });
    }
  });
});

describe('bad input', () => {
  it('answers 400 naming an unknown job type', async () => {
    const response = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body: { type: 'mine-bitcoin', payload: {} } });
    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe('body.type');
  });

  it('answers 400 for an unknown field', async () => {
    const response = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId }, colour: 'red' },
    });
    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe('body.colour');
  });

  it('answers 400 naming a bad payload field', async () => {
    const response = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: 'nope' } },
    });
    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe('body.payload.substrate_id');
  });

  it('answers 400 problem+json for malformed JSON', async () => {
    const response = await request('POST', '/api/v1/jobs', { token: alice.accessToken, rawBody: '{"type": "invoke",' });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.type).toMatch(/\/validation$/);
  });

  it('answers 413 for a body over 1 MiB', async () => {
    const response = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { pad: 'x'.repeat(1_100_000) } },
    });
    expect(response.status).toBe(413);
  });

  it('answers 400 naming substrate_id when an invoke payload lacks it', async () => {
    const response = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body: { type: 'invoke', payload: {} } });
    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe('body.payload.substrate_id');
  });

  it("answers 404 at submit for a job on another customer's substrate", async () => {
    const response = await request('POST', '/api/v1/jobs', {
      token: bob.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } } },
    });
    expect(response.status).toBe(404);
  });

  it('answers 400 for a malformed job id and a bad limit', async () => {
    expect((await request('GET', '/api/v1/jobs/not-a-uuid', { token: alice.accessToken })).status).toBe(400);
    expect((await request('GET', '/api/v1/jobs?limit=0', { token: alice.accessToken })).status).toBe(400);
    expect((await request('GET', '/api/v1/jobs?limit=101', { token: alice.accessToken })).status).toBe(400);
    expect((await request('GET', '/api/v1/jobs?cursor=garbage', { token: alice.accessToken })).status).toBe(400);
  });

  it('answers a path whose percent-encoding does not decode with 400 naming the path, as any malformed parameter', async () => {
    for (const path of ['/api/v1/jobs/%E0%A4%A', '/api/v1/jobs/%ZZ/events', '/api/v1/jobs/%C0%80/retry']) {
      const method = path.endsWith('/retry') ? 'POST' : 'GET';
      const response = await request(method, path, { token: alice.accessToken });
      expectProblem(response, 400, 'validation', ['path']);
      expect(response.body.errors).toEqual([{ field: 'path', message: expect.stringContaining('percent-encoding') }]);
      expect(response.body.detail).not.toContain('Failed to decode');
    }
  });

  it('never leaks a stack trace', async () => {
    const response = await request('GET', '/api/v1/jobs/00000000-0000-0000-0000-000000000000', { token: alice.accessToken });
    expect(response.status).toBe(404);
    expect(response.text).not.toMatch(/at .*\.ts:\d+/);
  });

  it('answers 401 without a token', async () => {
    const response = await request('GET', '/api/v1/jobs');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
  });
});

describe('stage marks', () => {
  it('keeps none for a waited job with SERVER_TIMING off, whatever the request carries: only the API’s own setting asks for them', async () => {
    const url = `/api/v1/substrates/${substrateId}/invoke`;
    const headers = { prefer: 'wait=5', 'server-timing': 'origin;dur=1' };
    const refused = await request('POST', url, {
      token: alice.accessToken,
      headers,
      body: { parameters: { x: 1, y: 2 }, timingOrigin: 1 },
    });
    expectProblem(refused, 400, 'validation');
    const waited = await request('POST', url, { token: alice.accessToken, headers, body: { parameters: { x: 2, y: 3, timingOrigin: 1 } } });
    expect(waited.status).toBe(200);
    const job = await bullJob(app.deps.queues, 'invoke', waited.body.id as string);
    expect(job?.data.notify).toBe(true);
    expect(job?.data).not.toHaveProperty('timingOrigin');
    expect(await app.deps.redis.exists(stageMarksKey(app.config.queuePrefix, waited.body.id as string))).toBe(0);
  });
});
