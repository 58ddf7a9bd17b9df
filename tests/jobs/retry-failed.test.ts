import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStateWriter } from '../../workers/job-state-writer.js';
import { finishedJobsChannel } from '../../queue/job-notices.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
});

const createSubstrate = async (expression: string) =>
  (await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression } })).body
    .substrate_id as string;

/** A job row parked in BullMQ's delayed set: the test sets its row state directly. */
async function parkedJob(): Promise<string> {
  const substrateId = await createSubstrate('x + 0');
  const response = await request('POST', '/api/v1/jobs', {
    token: alice.accessToken,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1 } }, delay_ms: 3_600_000 },
  });
  return response.body.id;
}

const rowOf = async (id: string) =>
  (
    await app.sql<{ state: string; attempts_made: number; finished_at: Date | null }>(
      'select state, attempts_made, finished_at from jobs where id = $1',
      [id],
    )
  )[0]!;

describe('a failed job retried through BullMQ (Bull Board’s Retry)', () => {
  it('runs again and its row goes failed → active → completed', async () => {
    const substrateId = await createSubstrate('x * y');
    const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 6, y: 7 } },
    });
    await request('DELETE', `/api/v1/substrates/${substrateId}`, { token: alice.accessToken });
    await app.startWorkers();
    const id = submitted.body.id as string;
    await waitFor(async () => (await rowOf(id)).state === 'failed');
    expect(await createSubstrate('x * y')).toBe(substrateId);

    await (await bullJob(app.deps.queues, 'invoke', id))!.retry('failed');
    const job = await waitFor(async () => {
      const polled = await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken });
      return polled.body.state === 'completed' ? polled.body : null;
    });
    expect(job).toMatchObject({ attempts_made: 2, result: { result: 42 } });
    expect(job.error).toBeUndefined();
  });

  it('ignores a late start of the attempt that failed the row, and never reopens a cancelled or completed row', async () => {
    const writer = new JobStateWriter(app.deps.orm.em.fork(), app.deps.logger, finishedJobsChannel(app.config.queuePrefix));
    const [failed, cancelled, completed] = [await parkedJob(), await parkedJob(), await parkedJob()];
    await app.sql(`update jobs set state = 'failed', attempts_made = 1, finished_at = now() where id = $1`, [failed]);
    await app.sql(`update jobs set state = 'cancelled', attempts_made = 1, finished_at = now() where id = $1`, [cancelled]);
    await app.sql(`update jobs set state = 'completed', attempts_made = 1, finished_at = now() where id = $1`, [completed]);

    writer.markActive(failed, 1);
    writer.markActive(cancelled, 2);
    writer.markActive(completed, 2);
    await writer.drain();
    expect((await rowOf(failed)).state).toBe('failed');
    expect((await rowOf(cancelled)).state).toBe('cancelled');
    expect((await rowOf(completed)).state).toBe('completed');

    writer.markActive(failed, 2);
    await writer.drain();
    expect(await rowOf(failed)).toMatchObject({ state: 'active', attempts_made: 2, finished_at: null });
  });
});
