import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStateWriter } from '../../workers/job-state-writer.js';
import { finishedJobsChannel } from '../../queue/job-notices.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let substrateId: string;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  substrateId = (
    await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression: 'x + 0' } })
  ).body.substrate_id as string;
});

afterAll(async () => {
  await app?.close();
});

/** A job row no worker touches (delayed an hour, no workers started): the test writes its outcome itself. */
async function parkedJob(): Promise<string> {
  const response = await request('POST', '/api/v1/jobs', {
    token: alice.accessToken,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1 } }, delay_ms: 3_600_000 },
  });
  return response.body.id as string;
}

const stateOf = async (id: string) => (await app.sql<{ state: string }>('select state from jobs where id = $1', [id]))[0]!.state;

/**
 * Holds a lock on `id`'s row in a transaction of its own, so the writer's batch that updates it waits, as a
 * flood's batch of hundreds of rows keeps the next one waiting on a busy machine; resolves to its release.
 */
async function lockRow(id: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: app.config.databaseUrl });
  await client.connect();
  await client.query('begin');
  await client.query('select 1 from jobs where id = $1 for update', [id]);
  return async () => {
    await client.query('rollback');
    await client.end();
  };
}

const settledWithin = async (write: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([write.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);

describe('the outcome a Prefer: wait call waits for', () => {
  it('is stored while a batch of other outcomes is still in flight (it does not queue behind it)', async () => {
    const writer = new JobStateWriter(app.deps.orm.em.fork(), app.deps.logger, finishedJobsChannel(app.config.queuePrefix));
    const [stuck, awaited] = [await parkedJob(), await parkedJob()];
    const release = await lockRow(stuck);
    const stuckWrite = writer.complete(stuck, { result: 1 }, 1);
    try {
      expect(await settledWithin(writer.complete(awaited, { result: 2 }, 1, true), 5_000)).toBe(true);
      expect(await stateOf(awaited)).toBe('completed');
      expect(await settledWithin(stuckWrite, 50)).toBe(false);
    } finally {
      await release();
    }
    await stuckWrite;
    expect(await stateOf(stuck)).toBe('completed');
  });

  it('while an outcome nobody waits for joins the next batch, after the one in flight', async () => {
    const writer = new JobStateWriter(app.deps.orm.em.fork(), app.deps.logger, finishedJobsChannel(app.config.queuePrefix));
    const [stuck, next] = [await parkedJob(), await parkedJob()];
    const release = await lockRow(stuck);
    const stuckWrite = writer.complete(stuck, { result: 1 }, 1);
    const nextWrite = writer.complete(next, { result: 2 }, 1);
    try {
      expect(await settledWithin(nextWrite, 300)).toBe(false);
      expect(await stateOf(next)).toBe('delayed');
    } finally {
      await release();
    }
    await Promise.all([stuckWrite, nextWrite]);
    expect([await stateOf(stuck), await stateOf(next)]).toEqual(['completed', 'completed']);
  });
});
