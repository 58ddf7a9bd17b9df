import { beforeAll, describe, expect, it } from 'vitest';
import { bulkWaitMaxResultBytes } from '../../api/job-responses.js';
import { findJobStates, findJobsWithin } from '../../db/jobs/find-jobs.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { uuidv7 } from '../../lib/uuid.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

const suite = useTestApp({ workers: true, users: 2 });
let alice: TestUser;
let bob: TestUser;
let substrateId: string;
let customerId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  bob = suite.users[1] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'x * y');
  customerId = (await suite.request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
});

const invoke = getJobDefinition('invoke')!;

async function submit(payloads: unknown[]): Promise<string[]> {
  const { deps } = suite.app;
  return submitJobsBulk(
    { em: deps.orm.em, queues: deps.queues, logger: deps.logger, cache: deps.cache, fair: deps.fair },
    customerId,
    invoke,
    payloads,
  );
}

async function finished(ids: string[]) {
  let rows: Array<{ id: string; state: string; result: { result: unknown; cached: boolean } | null; error: string | null }> = [];
  await waitFor(async () => {
    rows = await suite.app.sql(`select id, state, result, error from jobs where id = any($1::uuid[])`, [ids]);
    return rows.every((row) => row.state === 'completed' || row.state === 'failed');
  }, 75_000);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id)!);
}

describe('bulk submit', () => {
  // 2,500 jobs through in-process workers: ~14 s on one Redis and ~26 s on the 3-master cluster of
  // `npm run test:cluster` (3 more redis-servers, 16 shards) on a 2-core machine shared with other work.
  it('runs 2,500 invokes (three INSERT chunks) and stores every result in order of submission', { timeout: 90_000 }, async () => {
    const ids = await submit(Array.from({ length: 2500 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 3 } })));
    expect(new Set(ids).size).toBe(2500);
    const rows = await finished(ids);
    expect(rows.map((row) => row.result?.result)).toEqual(Array.from({ length: 2500 }, (_, i) => i * 3));
    expect(rows.every((row) => row.result?.cached === false)).toBe(true);
  });

  it('serves repeated invocations from the cache and evaluates the new ones in the same chunk', async () => {
    const repeated = Array.from({ length: 50 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 3 } }));
    const fresh = Array.from({ length: 50 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 1000 } }));
    const rows = await finished(await submit([...repeated, ...fresh]));
    expect(rows.slice(0, 50).map((row) => row.result)).toEqual(
      repeated.map((_, i) => expect.objectContaining({ result: i * 3, cached: true })),
    );
    expect(rows.slice(50).map((row) => row.result)).toEqual(
      fresh.map((_, i) => expect.objectContaining({ result: i * 1000, cached: false })),
    );
  });

  it("submits nothing when one payload breaks the job type's schema, and names it", async () => {
    const before = await suite.app.sql<{ n: string }>('select count(*) as n from jobs');
    await expect(submit([{ substrate_id: substrateId, parameters: { x: 1 } }, { substrate_id: 'not-an-id' }])).rejects.toThrow(
      /payloads\[1\]\.substrate_id/,
    );
    await expect(submit([null])).rejects.toThrow(/payloads\[0\]/);
    await expect(submit([{ substrate_id: substrateId, surprise: true }])).rejects.toThrow(/payloads\[0\]/);
    expect(await suite.app.sql<{ n: string }>('select count(*) as n from jobs')).toEqual(before);
  });

  it('runs payloads the cache cannot answer (operations, multiply) and fails an unknown substrate alone', async () => {
    const rows = await finished(
      await submit([
        { substrate_id: substrateId, parameters: { x: 6, y: 7 }, operation: { op: 'add', value: 1 } },
        { operation: { op: 'multiply', dimension_values: [2, 3, 4] } },
        { substrate_id: '0x0000000000000001', parameters: { x: 1, y: 1 } },
        { substrate_id: substrateId, parameters: { x: 2, y: 2 } },
      ]),
    );
    expect(rows.map((row) => row.state)).toEqual(['completed', 'completed', 'failed', 'completed']);
    expect(rows[0]!.result).toMatchObject({ original_value: 42, new_value: 43 });
    expect(rows[1]!.result).toMatchObject({ unity_value: 24 });
    expect(rows[2]!.error).toMatch(/substrate 0x0000000000000001 not found/);
    expect(rows[3]!.result).toMatchObject({ result: 4 });
  });
});

const bulk = (body: unknown, token = alice.accessToken, headers: Record<string, string> = {}) =>
  suite.request('POST', '/api/v1/jobs/bulk', { token, body, headers });
const countJobs = async (customer: string) =>
  Number((await suite.app.sql<{ n: string }>('select count(*) as n from jobs where customer_id = $1', [customer]))[0]!.n);

describe('POST /jobs/bulk', () => {
  it('accepts 1,000 jobs with 202, one item per job in request order, and runs them', async () => {
    const jobs = Array.from({ length: 1000 }, (_, i) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: i, y: 7 } },
    }));
    const response = await bulk({ jobs });
    expect(response.status, response.text).toBe(202);
    expect(response.body.items).toHaveLength(1000);
    expect(response.body.items[0]).toEqual({
      id: expect.any(String),
      type: 'invoke',
      state: 'queued',
      created_at: expect.any(String),
      links: { self: `/api/v1/jobs/${response.body.items[0].id}` },
    });
    const rows = await finished(response.body.items.map((item: { id: string }) => item.id));
    expect(rows.map((row) => row.result?.result)).toEqual(Array.from({ length: 1000 }, (_, i) => i * 7));
  });

  it("takes each job's options and types: delayed, prioritised, attempts, another type", async () => {
    const response = await bulk({
      jobs: [
        { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 2 } }, delay_ms: 3_600_000 },
        { type: 'divide', payload: { substrate_id: substrateId }, priority: 3, attempts: 2 },
        { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 5] } } },
      ],
    });
    expect(response.status, response.text).toBe(202);
    expect(response.body.items.map((item: { type: string; state: string }) => [item.type, item.state])).toEqual([
      ['invoke', 'delayed'],
      ['divide', 'queued'],
      ['invoke', 'queued'],
    ]);
    const [delayed, divide, multiply] = response.body.items.map((item: { id: string }) => item.id);
    const [row] = await suite.app.sql<{ priority: number; max_attempts: number }>('select priority, max_attempts from jobs where id = $1', [
      divide,
    ]);
    expect(row).toEqual({ priority: 3, max_attempts: 2 });
    const done = await finished([divide, multiply]);
    expect(done[1]!.result).toMatchObject({ unity_value: 10 });
    expect((await suite.request('GET', `/api/v1/jobs/${delayed}`, { token: alice.accessToken })).body.state).toBe('delayed');
  });

  it('with Prefer: wait answers 200 with every job as GET /jobs/:id shows it once all have finished', async () => {
    const jobs = [
      ...Array.from({ length: 20 }, (_, i) => ({
        type: 'invoke',
        payload: { substrate_id: substrateId, parameters: { x: 1000 + i, y: 3 } },
      })),
      { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 'text', y: 3 } } },
    ];
    const started = Date.now();
    const response = await bulk({ jobs }, alice.accessToken, { prefer: 'wait=10' });
    expect(response.status, response.text).toBe(200);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(response.headers.get('preference-applied')).toBe('wait=10');
    const items = response.body.items as Array<{ id: string; state: string; result?: { result: unknown }; error?: string }>;
    expect(items.map((item) => item.result?.result ?? item.state)).toEqual([
      ...Array.from({ length: 20 }, (_, i) => (1000 + i) * 3),
      'failed',
    ]);
    expect(items[20]!.error).toMatch(/no such overload/);
    for (const item of [items[0]!, items[20]!]) {
      expect((await suite.request('GET', `/api/v1/jobs/${item.id}`, { token: alice.accessToken })).body).toEqual(item);
    }
  });

  it('with Prefer: wait answers 202 with the finished items when their results together are past the answer budget', async () => {
    const quadruple = await createExpressionSubstrate(suite.request, alice.accessToken, 's + s + s + s');
    // 70 results of 64 KB: 4.5 MB, past bulkWaitMaxResultBytes (4 MiB).
    const jobs = Array.from({ length: 70 }, (_, i) => ({
      type: 'invoke',
      payload: { substrate_id: quadruple, parameters: { s: `${i}`.padEnd(16_000, 'x') } },
    }));
    const response = await bulk({ jobs }, alice.accessToken, { prefer: 'wait=20' });
    expect(response.status, response.text.slice(0, 300)).toBe(202);
    expect(response.headers.get('preference-applied')).toBeNull();
    expect(new Set(response.body.items.map((item: { state: string }) => item.state))).toEqual(new Set(['completed']));
    expect(response.body.items[0]).not.toHaveProperty('result');
  });

  it('with Prefer: wait answers 202 with the items when one job does not finish within the wait', async () => {
    const started = Date.now();
    const response = await bulk(
      {
        jobs: [
          { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 4 } } },
          { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 2, y: 4 } }, delay_ms: 3_600_000 },
        ],
      },
      alice.accessToken,
      { prefer: 'wait=1' },
    );
    expect(response.status, response.text).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(response.headers.get('preference-applied')).toBeNull();
    expect(response.body.items.map((item: { state: string }) => item.state)).toEqual(['completed', 'delayed']);
  });

  it('with Prefer: wait shows a job whose row was too big for its notice in its stored state (failed), not assumed completed', async () => {
    const unparsable = await createExpressionSubstrate(suite.request, alice.accessToken, 'int(s) + 1');
    const response = await bulk(
      {
        jobs: [
          // Its row (a 9,000-character parameter) is past NOTIFY's 8,000 bytes: its notice carries its id alone.
          { type: 'invoke', payload: { substrate_id: unparsable, parameters: { s: 'x'.repeat(9_000) } } },
          { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 3, y: 4 } }, delay_ms: 3_600_000 },
        ],
      },
      alice.accessToken,
      { prefer: 'wait=2' },
    );
    expect(response.status, response.text).toBe(202);
    expect(response.body.items.map((item: { state: string }) => item.state)).toEqual(['failed', 'delayed']);
  });

  it("reads finished rows for a wait only when every id is the customer's and their results fit the budget", async () => {
    const em = suite.app.deps.orm.em;
    const response = await bulk({ jobs: [{ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 5, y: 4 } } }] });
    const ids: string[] = response.body.items.map((item: { id: string }) => item.id);
    await waitFor(async () => (await findJobStates(em, customerId, ids))[0]?.state === 'completed', 20_000);
    const bobCustomerId = (await suite.request('GET', '/api/v1/auth/me', { token: bob.accessToken })).body.customer_id;
    expect((await findJobsWithin(em, customerId, ids, bulkWaitMaxResultBytes))?.map((job) => job.id)).toEqual(ids);
    expect(await findJobsWithin(em, bobCustomerId, ids, bulkWaitMaxResultBytes)).toBeNull();
    expect(await findJobsWithin(em, customerId, [...ids, uuidv7()], bulkWaitMaxResultBytes)).toBeNull();
    expect(await findJobsWithin(em, customerId, ids, 1)).toBeNull();
  });

  it('refuses the whole request when one job is malformed (400) or past a limit (422), naming jobs[i] — nothing stored', async () => {
    const before = await countJobs(customerId);
    const good = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } } };
    const malformed = await bulk({ jobs: [good, good, good, { type: 'invoke', payload: { substrate_id: 'not-an-id' } }] });
    expectProblem(malformed, 400, 'validation', ['jobs[3].payload.substrate_id']);
    const mixed = await bulk({ jobs: [{ ...good, surprise: 1 }, { type: 'nope' }, { ...good, attempts: 26 }] });
    expectProblem(mixed, 400, 'validation', ['jobs[0].surprise', 'jobs[1].type', 'jobs[2].attempts']);
    const overLimit = await bulk({ jobs: [good, { ...good, attempts: 26 }] });
    expectProblem(overLimit, 422, 'unprocessable', ['jobs[1].attempts']);
    const tooMany = await bulk({ jobs: Array.from({ length: 1001 }, () => good) });
    expectProblem(tooMany, 422, 'unprocessable', ['jobs']);
    // The detail counts the jobs sent and names the limit.
    expect(tooMany.body.detail).toBe('the bulk exceeds a limit: jobs at most 1,000 jobs; none of its 1,001 jobs was submitted');
    expect((await bulk({ jobs: 'all' })).body.detail).toMatch(/; no job was submitted$/);
    expectProblem(await bulk({ jobs: [] }), 400, 'validation', ['jobs']);
    expectProblem(await bulk({ jobs: 'all' }), 400, 'validation', ['jobs']);
    expectProblem(await bulk({}), 400, 'validation', ['jobs']);
    expectProblem(await bulk({ jobs: [good], extra: true }), 400, 'validation', ['extra']);
    expectProblem(await bulk({ jobs: [good] }, alice.accessToken, { 'idempotency-key': 'k' }), 400, 'validation', [
      'header.idempotency-key',
    ]);
    expectProblem(await bulk({ jobs: [good, { type: 'metering', payload: {} }] }), 403, 'forbidden', ['jobs[1].type']);
    expect(await countJobs(customerId)).toBe(before);
  });

  it('names each unknown key of a job on its own, cut to 128 characters, and lists at most 100 errors with errors_total', async () => {
    const good = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } } };
    const oneKey = await bulk({ jobs: [good, { ...good, colour: 'red', ['y'.repeat(300)]: 1 }] });
    expectProblem(oneKey, 400, 'validation');
    expect(oneKey.body.errors).toEqual([
      { field: 'jobs[1].colour', message: 'unknown field' },
      { field: `jobs[1].${'y'.repeat(128)}…`, message: 'unknown field' },
    ]);
    expect(oneKey.body).not.toHaveProperty('errors_total');

    const manyKeys: Record<string, unknown> = { ...good };
    for (let i = 0; i < 90_000; i++) manyKeys[`k${i}`] = 0;
    const flooded = await bulk({ jobs: [manyKeys] });
    expectProblem(flooded, 400, 'validation', ['jobs[0].k0', 'jobs[0].k99']);
    expect(flooded.body.errors).toHaveLength(100);
    expect(flooded.body.errors_total).toBe(90_000);
    expect(flooded.text.length).toBeLessThan(20_000);

    const manyItems = await bulk({ jobs: Array.from({ length: 1000 }, () => ({ type: 'invoke', payload: { substrate_id: 'nope' } })) });
    expectProblem(manyItems, 400, 'validation', ['jobs[0].payload.substrate_id', 'jobs[99].payload.substrate_id']);
    expect(manyItems.body.errors).toHaveLength(100);
    expect(manyItems.body.errors_total).toBe(1000);
  });

  it("refuses the whole request with 404 when one job names another customer's substrate", async () => {
    const bobsSubstrate = await createExpressionSubstrate(suite.request, bob.accessToken, 'x + 1');
    const before = await countJobs(customerId);
    const response = await bulk({
      jobs: [
        { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } } },
        { type: 'invoke', payload: { substrate_id: bobsSubstrate, parameters: { x: 1 } } },
      ],
    });
    expectProblem(response, 404, 'not-found', ['jobs[1].payload.substrate_id']);
    expect(response.text).not.toContain('x + 1');
    expect(await countJobs(customerId)).toBe(before);
  });

  it('takes a per-job idempotency_key: the same job again answers with the job it named; another job with it is 422', async () => {
    const job = (x: number, key: string) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x, y: 1 } },
      idempotency_key: key,
    });
    const first = await bulk({ jobs: [job(1, 'bulk-key-1'), job(2, 'bulk-key-2')] });
    expect(first.status, first.text).toBe(202);
    const again = await bulk({ jobs: [job(1, 'bulk-key-1'), job(3, 'bulk-key-3')] });
    expect(again.status, again.text).toBe(202);
    expect(again.body.items[0].id).toBe(first.body.items[0].id);
    expect(again.body.items[1].id).not.toBe(first.body.items[1].id);
    // Each item carries its own job's creation time: the replayed job's, then the new one's (a later INSERT).
    expect(again.body.items[0].created_at).toBe(first.body.items[0].created_at);
    expect(Date.parse(again.body.items[1].created_at)).toBeGreaterThan(Date.parse(first.body.items[1].created_at));
    // The same job and key sent alone to POST /jobs names the same job.
    const alone = await suite.request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      headers: { 'idempotency-key': 'bulk-key-2' },
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 2, y: 1 } } },
    });
    expect(alone.body.id).toBe(first.body.items[1].id);
    const before = await countJobs(customerId);
    const conflict = await bulk({ jobs: [job(9, 'bulk-key-fresh'), job(99, 'bulk-key-1')] });
    expectProblem(conflict, 422, 'unprocessable', ['jobs[1].idempotency_key']);
    expect(await countJobs(customerId)).toBe(before);
    expectProblem(await bulk({ jobs: [job(1, 'bad key with spaces')] }), 400, 'validation', ['jobs[0].idempotency_key']);
  });

  it('takes bodies over 1 MiB (up to 16 MiB), and answers 413 past that', async () => {
    const padding = 'p'.repeat(2000);
    const jobs = Array.from({ length: 900 }, (_, i) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: i, y: 1, note: padding } },
    }));
    const response = await bulk({ jobs });
    expect(response.status, response.text.slice(0, 300)).toBe(202);
    const huge = await suite.request('POST', '/api/v1/jobs/bulk', {
      token: alice.accessToken,
      rawBody: JSON.stringify({
        jobs: [{ type: 'invoke', payload: { substrate_id: substrateId, parameters: { s: 'x'.repeat(17 * 1024 * 1024) } } }],
      }),
    });
    expectProblem(huge, 413, 'payload-too-large');
  });

  it('records one request-log row per accepted job, and one for a refused bulk', async () => {
    const carol = await registerUser(suite.request);
    const carolId = (await suite.request('GET', '/api/v1/auth/me', { token: carol.accessToken })).body.customer_id;
    const carolSubstrate = await createExpressionSubstrate(suite.request, carol.accessToken, 'x');
    const rows = async () => {
      await suite.app.deps.requestLog.flush();
      return suite.app.sql<{ status_code: number; n: string }>(
        `select status_code, count(*) as n from request_logs where customer_id = $1 and method = 'POST' group by status_code order by status_code`,
        [carolId],
      );
    };
    const before = await rows();
    const jobs = Array.from({ length: 25 }, (_, i) => ({
      type: 'invoke',
      payload: { substrate_id: carolSubstrate, parameters: { x: i } },
    }));
    expect((await bulk({ jobs }, carol.accessToken)).status).toBe(202);
    expect((await bulk({ jobs: [...jobs, { type: 'nope' }] }, carol.accessToken)).status).toBe(400);
    const after = await rows();
    const count = (list: typeof before, status: number) => Number(list.find((row) => row.status_code === status)?.n ?? 0);
    expect(count(after, 202) - count(before, 202)).toBe(25);
    expect(count(after, 400) - count(before, 400)).toBe(1);
  });
});
