import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { bullJob, obliterateType } from '../helpers/queues.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { inlineResultMaxBytes, resultInRow } from '../../queue/queues.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let substrateId: string;

beforeAll(async () => {
  // FIFO: the sweeper enqueues lost jobs straight into BullMQ; with fair sharing it re-lanes them (fair-share.test.ts, fair-bundles.test.ts).
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FAIR_SHARING: 'false' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  substrateId = (
    await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression: 'x + 1' } })
  ).body.substrate_id;
});

afterAll(async () => {
  await app?.close();
});

describe('sweeper', () => {
  it('re-enqueues accepted jobs that Redis lost, under the same id, and they complete once', async () => {
    const ids: string[] = [];
    for (let x = 0; x < 20; x++) {
      const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
        token: alice.accessToken,
        body: { parameters: { x } },
      });
      ids.push(submitted.body.id);
    }
    // The adds follow the 202s (queue/pending-enqueues.ts): one landing after the obliterate would not be lost.
    await app.deps.pendingEnqueues.drain();
    // Redis forgets everything about these jobs (as after a restart without persistence).
    await obliterateType(app.deps.queues, 'invoke');
    expect(await bullJob(app.deps.queues, 'invoke', ids[0]!)).toBeUndefined();
    await app.sql(`update jobs set created_at = created_at - interval '1 minute' where id = any($1::uuid[])`, [ids]);

    const running = await app.startWorkers();
    const report = await running.sweeper.sweep();
    expect(report.reenqueued).toBe(20);
    // Fair sharing: back into their customer's lanes (never straight into BullMQ); the releaser adds them to the shard their id names.
    for (const id of ids) {
      const job = await waitFor(async () => (await bullJob(app.deps.queues, 'invoke', id)) ?? null, 10_000);
      expect(job.id, 'back on the shard its id names').toBe(id);
    }

    const rows = await waitFor(async () => {
      const found = await app.sql<{ state: string; attempts_made: number }>(
        `select state, attempts_made from jobs where id = any($1::uuid[])`,
        [ids],
      );
      return found.every((row) => row.state === 'completed') ? found : null;
    }, 20_000);
    expect(rows.every((row) => row.attempts_made === 1)).toBe(true);
    expect((await running.sweeper.sweep()).reenqueued).toBe(0);
  });

  it('records an outcome PostgreSQL lost but BullMQ kept', async () => {
    const running = await app.startWorkers();
    const done = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 41 } },
    });
    expect(done.body.state).toBe('completed');
    // As if PostgreSQL crashed before the (asynchronously committed) result write reached disk.
    await app.sql(
      `update jobs set state = 'active', result = null, finished_at = null, created_at = created_at - interval '1 minute' where id = $1`,
      [done.body.id],
    );
    const report = await running.sweeper.sweep();
    expect(report.reconciled).toBe(1);
    const [row] = await app.sql<{ state: string; result: { result: number } }>('select state, result from jobs where id = $1', [
      done.body.id,
    ]);
    expect(row).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('keeps a big result in the row alone (written durably), so BullMQ holds only a note of it, never copied back', async () => {
    const running = await app.startWorkers();
    const repeat = (
      await request('POST', '/api/v1/substrates', {
        token: alice.accessToken,
        body: { expression_type: 'expression', expression: '[s, s, s, s, s, s, s, s, s, s]' },
      })
    ).body.substrate_id;
    const s = 'r'.repeat(Math.ceil(inlineResultMaxBytes / 10) + 100);
    const done = await request('POST', `/api/v1/substrates/${repeat}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { s } },
    });
    expect(done.body).toMatchObject({ state: 'completed', result: { result: Array(10).fill(s) } });
    // The wait is answered from the row; BullMQ completes the job once the durable commit is done.
    const kept = await waitFor(async () => {
      const job = await bullJob(app.deps.queues, 'invoke', done.body.id);
      return job?.returnvalue == null ? null : job;
    }, 5000);
    expect(kept.returnvalue).toEqual(resultInRow);

    // Even if the row looked unfinished, the sweeper must not store the note as the result.
    await app.sql(`update jobs set state = 'active', created_at = created_at - interval '1 minute' where id = $1`, [done.body.id]);
    expect((await running.sweeper.sweep()).reconciled).toBe(0);
    const [row] = await app.sql<{ result: { result: string[] } }>('select result from jobs where id = $1', [done.body.id]);
    expect(row?.result.result).toEqual(Array(10).fill(s));
    await app.sql(`update jobs set state = 'completed' where id = $1`, [done.body.id]);
  });

  it('leaves young jobs alone: their enqueue may still be in flight', async () => {
    const running = await app.startWorkers();
    await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1 } }, delay_ms: 60_000 },
    });
    await obliterateType(app.deps.queues, 'invoke');
    expect((await running.sweeper.sweep()).reenqueued).toBe(0);
  });

  it('lets one process sweep at a time', async () => {
    const running = await app.startWorkers();
    await app.deps.redis.set(`${app.config.queuePrefix}:sweeper:lock`, 'someone-else', 'PX', 10_000);
    expect(await running.sweeper.sweepIfLeader()).toBeNull();
    await app.deps.redis.del(`${app.config.queuePrefix}:sweeper:lock`);
    expect(await running.sweeper.sweepIfLeader()).not.toBeNull();
  });
});
