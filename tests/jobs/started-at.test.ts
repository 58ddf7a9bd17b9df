import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

// The slow invocation below runs for seconds on a busy machine: more than the default 5 s task limit allows.
const suite = useTestApp({ workers: true, users: 1, env: { TASK_TIMEOUT_MS: '60000' } });
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let product: string;

beforeAll(async () => {
  ({ request } = suite);
  [alice] = suite.users as [TestUser];
  product = (
    await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression: 'x * y' } })
  ).body.substrate_id;
});

const time = (value: string) => Date.parse(value);

describe('started_at', () => {
  it('a fast invocation finishes with started_at between created_at and finished_at', async () => {
    const accepted = await request('POST', `/api/v1/substrates/${product}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 3, y: 4 } },
    });
    expect(accepted.status).toBe(202);
    const done = await waitFor(async () => {
      const job = await request('GET', `/api/v1/jobs/${accepted.body.id}`, { token: alice.accessToken });
      return job.body.state === 'completed' ? job.body : null;
    });
    expect(done.started_at, JSON.stringify(done)).toEqual(expect.any(String));
    expect(time(done.started_at)).toBeGreaterThanOrEqual(time(done.created_at));
    expect(time(done.started_at)).toBeLessThanOrEqual(time(done.finished_at));
  });

  it('a waited invocation answers with started_at too', async () => {
    const waited = await request('POST', `/api/v1/substrates/${product}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 5, y: 6 } },
    });
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ state: 'completed', started_at: expect.any(String), finished_at: expect.any(String) });
    expect(time(waited.body.started_at)).toBeLessThanOrEqual(time(waited.body.finished_at));
  });

  /** Polls the job until it is no longer queued: a job that runs this long is `active` by then, with its start time. */
  async function firstStateAfterQueued(id: string) {
    const seen: string[] = [];
    const job = await waitFor(
      async () => {
        const polled = await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken });
        seen.push(polled.body.state);
        return polled.body.state === 'queued' ? null : polled.body;
      },
      60_000,
      10,
    );
    return { job, seen };
  }

  async function finished(id: string) {
    return waitFor(
      async () => {
        const polled = await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken });
        return ['completed', 'failed'].includes(polled.body.state) ? polled.body : null;
      },
      60_000,
      50,
    );
  }

  it('a slow invocation reads active with its start time while it runs, and keeps that start time', async () => {
    // A million evaluations of the innermost condition: a second or more in a thread, well past the 100 ms
    // after which a running job is written `active`.
    const list = `[${Array.from({ length: 100 }, (_, i) => i).join(',')}]`;
    const slow = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: `${list}.all(a, ${list}.all(b, ${list}.all(c, a + b + c + x >= 0)))` },
    });
    expect(slow.status, slow.text).toBe(201);
    const accepted = await request('POST', `/api/v1/substrates/${slow.body.substrate_id}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 1 } },
    });
    expect(accepted.status).toBe(202);

    const { job: running, seen } = await firstStateAfterQueued(accepted.body.id);
    expect(running.state, `states seen: ${seen.join(', ')}`).toBe('active');
    expect(time(running.started_at)).toBeGreaterThanOrEqual(time(running.created_at));
    const done = await finished(accepted.body.id);
    expect(done).toMatchObject({ state: 'completed', result: { result: true }, started_at: running.started_at });
  }, 90_000);

  it('a running batch reads active with its start time, and keeps that start time once it has finished', async () => {
    const invocations = Array.from({ length: 10_000 }, (_, i) => ({ substrate_id: product, parameters: { x: i, y: 3 } }));
    const submitted = await request('POST', '/api/v1/batches', { token: alice.accessToken, body: { invocations } });
    expect(submitted.status).toBe(202);

    const { job: running, seen } = await firstStateAfterQueued(submitted.body.id);
    expect(running.state, `states seen: ${seen.join(', ')}`).toBe('active');
    expect(time(running.started_at)).toBeGreaterThanOrEqual(time(running.created_at));
    const done = await finished(submitted.body.id);
    expect(done).toMatchObject({ state: 'completed', started_at: running.started_at });
    expect(time(done.finished_at)).toBeGreaterThanOrEqual(time(done.started_at));
  }, 90_000);
});
