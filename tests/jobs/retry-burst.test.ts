import { beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { findRetryEndedBefore } from '../../db/jobs/find-jobs.js';

/**
 * POST /jobs/:id/retry without an Idempotency-Key, asked for by many requests at once (api/routes/job-search.routes.ts):
 * one burst makes one retry, even when that retry fails at once — before, the burst's last requests read it as
 * ended, keyed their retry by a new count of ended retries and made a second one (2 distinct retries in 2 of 3
 * rounds). A retry asked for after the burst's retry ended is still a new job.
 */
const suite = useTestApp({ workers: true, users: 1 });
let token = '';
let failedId = '';

const retry = () => suite.request('POST', `/api/v1/jobs/${failedId}/retry`, { token });
const retriesOf = async (id: string) =>
  (await suite.app.sql<{ id: string }>('select id from jobs where retry_of = $1 order by id', [id])).map((row) => row.id);
const ended = (id: string) =>
  waitFor(async () => {
    const job = await suite.request('GET', `/api/v1/jobs/${id}`, { token });
    return ['failed', 'completed', 'cancelled'].includes(job.body.state) ? job.body : null;
  });

beforeAll(async () => {
  token = suite.users[0]!.accessToken;
  const substrateId = await createExpressionSubstrate(suite.request, token, 'x * y');
  const failed = await suite.request('POST', '/api/v1/jobs', {
    token,
    headers: { prefer: 'wait=20' },
    body: {
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: 2, y: 3 }, operation: { op: 'modulus', modulus: 0 } },
      attempts: 1,
    },
  });
  expect(failed.body.state, failed.text).toBe('failed');
  failedId = failed.body.id;
}, 60_000);

describe('a burst of POST /jobs/:id/retry of a job whose retry fails at once', () => {
  it('makes one retry per burst, answering every request with it; a retry asked for after it ended is a new job', async () => {
    const made: string[] = [];
    for (let round = 0; round < 8; round++) {
      // The burst lands while no worker runs: a loaded API may answer its first requests and the retry fail before
      // its last requests arrive, and a retry asked for after the last one ended is rightly a new job.
      await suite.app.stopWorkers();
      const answers = await Promise.all(Array.from({ length: 20 }, retry));
      await suite.app.startWorkers();
      for (const answer of answers) expect(answer.status, answer.text).toBe(202);
      const ids = new Set(answers.map((answer) => answer.body.id as string));
      expect([...ids], `round ${round}: one retry for the whole burst`).toHaveLength(1);
      const [id] = [...ids] as [string];
      expect(answers[0]!.body).toMatchObject({ retry_of: failedId });
      expect(made).not.toContain(id);
      made.push(id);
      expect(await retriesOf(failedId)).toEqual(made);
      expect(await ended(id)).toMatchObject({ state: 'failed', retry_of: failedId });
    }
    // Asked for once the last retry has ended, one at a time: each a new job.
    const later = await retry();
    expect(later.status, later.text).toBe(202);
    expect(made).not.toContain(later.body.id);
    await ended(later.body.id);
    const again = await retry();
    expect(again.status, again.text).toBe(202);
    expect(again.body.id).not.toBe(later.body.id);
    expect(await retriesOf(failedId)).toEqual([...made, later.body.id, again.body.id]);
    // The next test reads when each retry ended.
    await ended(again.body.id);
  }, 120_000);

  it('keys a retry by the newest retry that had ended when it was asked for: one still running then, or made later, does not count', async () => {
    const customerId = (await suite.request('GET', '/api/v1/auth/me', { token })).body.customer_id as string;
    const rows = await suite.app.sql<{ id: string; finished: string }>(
      `select id, (extract(epoch from finished_at) * 1000)::bigint::text as finished from jobs where retry_of = $1 order by id`,
      [failedId],
    );
    expect(rows.length).toBeGreaterThan(2);
    const [before, last] = rows.slice(-2) as [(typeof rows)[0], (typeof rows)[0]];
    const lastEnded = (askedAt: number) => findRetryEndedBefore(suite.app.deps.orm.em, customerId, failedId, askedAt);
    // Asked for after the last retry ended: that one.
    expect(await lastEnded(Number(last.finished) + 5)).toBe(last.id);
    // Asked for while it ran (it ended after), or before it was made: the one before it.
    expect(await lastEnded(Number(last.finished) - 1)).toBe(before.id);
    const madeAt = (id: string) => parseInt(id.replaceAll('-', '').slice(0, 12), 16); // a UUIDv7's millisecond
    expect(await lastEnded(madeAt(last.id))).toBe(before.id);
    // Before any retry ended: none.
    expect(await lastEnded(madeAt(rows[0]!.id))).toBeNull();
  });
});
