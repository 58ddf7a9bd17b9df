import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import type { RunningWorkers } from '../../workers/run-workers.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let substrateId: string;
let running: RunningWorkers;

/** BullMQ counts its finished jobs by the worker's clock; the trim leaves those of the last 2 s alone. */
const pastTrimMargin = () => new Promise((resolve) => setTimeout(resolve, 2200));

beforeAll(async () => {
  // Trimming by hand here (sweeper.trimFinished), and no sweeps of its own.
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FINISHED_JOB_TRIM_INTERVAL_MS: '0' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  substrateId = await createExpressionSubstrate(request, alice.accessToken, 'x + 1');
  running = await app.startWorkers();
});

afterAll(async () => {
  await app?.close();
});

const invokeAndWait = async (x: number) =>
  (
    await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x } },
    })
  ).body;

describe('BullMQ keeps a finished job only until its row is durable', () => {
  it('removes a completed job from BullMQ once a durable commit follows its final write; the row keeps the result', async () => {
    const done = await invokeAndWait(1);
    expect(done.state).toBe('completed');
    const queue = app.deps.queues.forJob('invoke', done.id);
    // The waited answer leaves with the row's write, a moment before BullMQ records the completion.
    const bullJob = await waitFor(async () => ((await queue.getJob(done.id))?.finishedOn ? queue.getJob(done.id) : null));
    expect(bullJob?.returnvalue).toMatchObject({ result: 2 });
    await pastTrimMargin();
    const report = await running.sweeper.trimFinished();
    expect(report.removed).toBeGreaterThanOrEqual(1);
    expect(await queue.getJob(done.id)).toBeUndefined();
    const [row] = await app.sql<{ state: string; result: { result: number } }>('select state, result from jobs where id = $1', [done.id]);
    expect(row).toMatchObject({ state: 'completed', result: { result: 2 } });
  });

  it('keeps the BullMQ copy of an outcome PostgreSQL lost until the sweeper has copied it, then removes it', async () => {
    const done = await invokeAndWait(10);
    // As if PostgreSQL crashed before the (asynchronously committed) result write reached disk.
    await app.sql(
      `update jobs set state = 'active', result = null, finished_at = null, created_at = created_at - interval '1 minute' where id = $1`,
      [done.id],
    );
    await pastTrimMargin();
    const queue = app.deps.queues.forJob('invoke', done.id);
    await running.sweeper.trimFinished();
    expect((await queue.getJob(done.id))?.returnvalue).toMatchObject({ result: 11 });

    expect((await running.sweeper.sweep()).reconciled).toBe(1);
    await running.sweeper.trimFinished();
    expect(await queue.getJob(done.id)).toBeUndefined();
    const [row] = await app.sql<{ state: string; result: { result: number } }>('select state, result from jobs where id = $1', [done.id]);
    expect(row).toMatchObject({ state: 'completed', result: { result: 11 } });
  });

  it('copies the outcome of a job that finished before it was ever written active (its row still queued)', async () => {
    const done = await invokeAndWait(20);
    await app.sql(
      `update jobs set state = 'queued', result = null, finished_at = null, created_at = created_at - interval '1 minute' where id = $1`,
      [done.id],
    );
    expect((await running.sweeper.sweep()).reconciled).toBe(1);
    const [row] = await app.sql<{ state: string }>('select state from jobs where id = $1', [done.id]);
    expect(row?.state).toBe('completed');
  });

  it('trims on its own timer in a running worker (FINISHED_JOB_TRIM_INTERVAL_MS)', async () => {
    await app.stopWorkers();
    running = await app.startWorkers({ finishedJobTrimIntervalMs: 200 });
    const done = await invokeAndWait(30);
    const queue = app.deps.queues.forJob('invoke', done.id);
    await waitFor(async () => (await queue.getJob(done.id)) === undefined, 15_000, 100);
  });
});
