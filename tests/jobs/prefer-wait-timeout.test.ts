import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { waitAnswers, waitAnswersSince } from '../helpers/job-waits.js';
import { finishedJobsChannel, listenerApplicationName } from '../../queue/job-notices.js';

// No workers at first: every waited job outlives its wait.
const suite = useTestApp({ users: 1 });
let alice: TestUser;
let substrateId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'x + 1');
});

const invoke = (x: number, prefer = 'wait=1') =>
  suite.request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
    token: alice.accessToken,
    headers: { prefer },
    body: { parameters: { x } },
  });

describe('Prefer: wait that runs out', () => {
  it('answers 202 with the job queued, stored and in the queue', async () => {
    const before = await waitAnswers();
    const response = await invoke(1);
    expect(response.status).toBe(202);
    expect(await waitAnswersSince(before)).toEqual({ notice: 0, poll: 0, timeout: 1 });
    expect(response.body).toMatchObject({ state: 'queued', links: { self: `/api/v1/jobs/${response.body.id}` } });
    expect((await suite.request('GET', `/api/v1/jobs/${response.body.id}`, { token: alice.accessToken })).body).toMatchObject({
      state: 'queued',
    });
    expect(await suite.app.deps.queues.forJob('invoke', response.body.id).getJobState(response.body.id)).toBe('waiting');
  });

  it('keeps its 202 when the row is lost before reaching the disk: stores it again, and the job runs', async () => {
    // A long wait, so the deletion below surely lands before it ends.
    const pending = invoke(2, 'wait=3');
    // Stand-in for a PostgreSQL restart that loses the row's quick commit while the request waits.
    let lostId = '';
    await waitFor(async () => {
      const [row] = await suite.app.sql<{ id: string }>(`delete from jobs where payload->'parameters'->>'x' = '2' returning id`);
      lostId = row?.id ?? '';
      return lostId !== '';
    }, 2500);
    const response = await pending;
    expect(response.status).toBe(202);
    expect(response.body.id).toBe(lostId);
    expect((await suite.request('GET', `/api/v1/jobs/${lostId}`, { token: alice.accessToken })).body).toMatchObject({ state: 'queued' });

    await suite.app.startWorkers();
    await waitFor(
      async () => (await suite.request('GET', `/api/v1/jobs/${lostId}`, { token: alice.accessToken })).body.state === 'completed',
      10_000,
    );
    expect((await suite.request('GET', `/api/v1/jobs/${lostId}`, { token: alice.accessToken })).body.result).toMatchObject({ result: 3 });
  });

  it('answers 200 with the outcome when the job finishes within the wait', async () => {
    await suite.app.startWorkers();
    const response = await invoke(41, 'wait=5');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });
});

describe('finished-job notices', () => {
  it('answers a wait whose row is too big for a notice at once, reading the row the id-only notice names', async () => {
    await suite.app.startWorkers();
    const concat = await createExpressionSubstrate(suite.request, alice.accessToken, 'text + text');
    const text = 'x'.repeat(6000);
    const before = await waitAnswers();
    const response = await suite.request('POST', `/api/v1/substrates/${concat}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { text } },
    });
    expect(response.status).toBe(200);
    expect(response.body.result.result).toBe(text + text);
    // The id-only notice woke the wait, not the once-a-second poll.
    expect(await waitAnswersSince(before)).toEqual({ notice: 1, poll: 0, timeout: 0 });
  });

  it('ignores a notice it cannot read and answers the next wait from its notice as usual', async () => {
    await suite.app.startWorkers();
    await suite.app.sql('select pg_notify($1, $2)', [finishedJobsChannel(suite.app.config.queuePrefix), 'not json {']);
    await suite.app.sql('select pg_notify($1, $2)', [
      finishedJobsChannel(suite.app.config.queuePrefix),
      JSON.stringify({ id: 'not-a-watched-job' }),
    ]);
    const before = await waitAnswers();
    const response = await invoke(7, 'wait=5');
    expect(response.status).toBe(200);
    expect(response.body.result).toMatchObject({ result: 8 });
    expect(await waitAnswersSince(before)).toEqual({ notice: 1, poll: 0, timeout: 0 });
  });

  it('listens again after its connection is cut, so waits are answered by notices, not polls', async () => {
    await suite.app.startWorkers();
    const [killed] = await suite.app.sql<{ pid: number; killed: boolean }>(
      `select pid, pg_terminate_backend(pid) as killed from pg_stat_activity where application_name = $1 and datname = current_database()`,
      [listenerApplicationName],
    );
    expect(killed?.killed).toBe(true);
    // A new connection's LISTEN: the killed backend can still show its own `listen` for a moment.
    await waitFor(
      async () =>
        (
          await suite.app.sql(
            `select 1 from pg_stat_activity
              where application_name = $1 and datname = current_database() and pid <> $2 and query ilike 'listen%' and state = 'idle'`,
            [listenerApplicationName, killed?.pid],
          )
        ).length > 0,
      10_000,
    );
    const before = await waitAnswers();
    const response = await invoke(99, 'wait=5');
    expect(response.status).toBe(200);
    expect(response.body.result).toMatchObject({ result: 100 });
    expect(await waitAnswersSince(before)).toEqual({ notice: 1, poll: 0, timeout: 0 });
  });
});
