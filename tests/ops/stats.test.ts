import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { createStats } from '../../api/stats.js';
import { uuidv7 } from '../../lib/uuid.js';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, type TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

let substrateId: string;

const suite = useTestApp({ workers: true, users: 2 });
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ request } = suite);
  [alice, bob] = suite.users as [TestUser, TestUser];
  const created = await request('POST', '/api/v1/substrates', {
    token: alice.accessToken,
    body: { expression_type: 'expression', expression: 'x + 1' },
  });
  substrateId = created.body.substrate_id;
  const wait = { prefer: 'wait=10' };
  // Two computed invocations, a repeat answered from the cache, and an operation that fails (root of −1).
  for (const x of [1, 2, 1]) {
    const response = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: wait,
      body: { parameters: { x } },
    });
    expect(response.body.state, response.text).toBe('completed');
  }
  const failed = await request('POST', `/api/v1/substrates/${substrateId}/root`, {
    token: alice.accessToken,
    headers: wait,
    body: { degree: 2, parameters: { x: -2 } },
  });
  expect(failed.body.state).toBe('failed');
});

describe('GET /stats', () => {
  it('gives a customer their own job, invocation and cache figures for the last hour', async () => {
    const response = await request('GET', '/api/v1/stats', { token: alice.accessToken });
    expect(response.status).toBe(200);
    const stats = response.body;
    expect(stats).toMatchObject({ scope: 'customer', window_seconds: 3600 });
    expect(stats.uptime_seconds).toBeGreaterThanOrEqual(0);
    expect(stats.jobs.by_state).toEqual({ queued: 0, delayed: 0, active: 0, completed: 3, failed: 1, cancelled: 0 });
    expect(stats.jobs).toMatchObject({ submitted: 4, completed: 3, failed: 1, error_rate: 0.25 });
    expect(stats.jobs.submitted_per_minute).toBeCloseTo(4 / 60, 3);
    for (const p of ['p50', 'p95', 'p99']) expect(stats.jobs.latency_ms[p]).toBeGreaterThanOrEqual(0);
    expect(stats.jobs.latency_ms.p50).toBeLessThanOrEqual(stats.jobs.latency_ms.p99);
    // x=1 and x=2 were computed (cached: false), the repeat of x=1 came from the cache; the root operation bypasses it.
    expect(stats.invocations).toEqual({ total: 4, cached: 1, cache_hit_rate: 0.3333 });
    expect(stats.top_substrates).toEqual([{ substrate_id: substrateId, invocations: 4 }]);
    // Alice's requests to this API process: the submits above and this one at least.
    expect(stats.http.requests).toBeGreaterThanOrEqual(4);
    expect(stats.http.error_rate).toBe(0);
    expect(stats.http.latency_ms.p99).toBeGreaterThan(0);
  });

  it('shows another customer none of those figures', async () => {
    const response = await request('GET', '/api/v1/stats', { token: bob.accessToken });
    expect(response.status).toBe(200);
    expect(response.body.jobs).toMatchObject({
      submitted: 0,
      completed: 0,
      failed: 0,
      error_rate: null,
      latency_ms: { p50: null, p95: null, p99: null },
    });
    expect(response.body.invocations).toEqual({ total: 0, cached: 0, cache_hit_rate: null });
    expect(response.body.top_substrates).toEqual([]);
  });

  it('gives an admin the global figures', async () => {
    const response = await request('GET', '/api/v1/stats', { token: await loginAdmin(request) });
    expect(response.status).toBe(200);
    expect(response.body.scope).toBe('global');
    expect(response.body.jobs.by_state.completed).toBeGreaterThanOrEqual(3);
    expect(response.body.top_substrates[0]).toEqual({ substrate_id: substrateId, invocations: 4 });
    expect(response.body.http.requests).toBeGreaterThan(0);
  });

  it('answers 401 without credentials and 400 for an unknown query parameter', async () => {
    expectProblem(await request('GET', '/api/v1/stats'), 401, 'unauthorized');
    expectProblem(await request('GET', '/api/v1/stats?window=60', { token: alice.accessToken }), 400, 'validation', ['query.window']);
  });
});

describe('the reading of job figures /stats shares', () => {
  it("serves a customer's calls from one reading for the reuse window, concurrent ones too, then reads again", async () => {
    const customerId = (await request('GET', '/api/v1/auth/me', { token: bob.accessToken })).body.customer_id as string;
    const stats = createStats(suite.app.deps.orm.em, 300);
    const first = await Promise.all(Array.from({ length: 10 }, () => stats(customerId)));
    expect(new Set(first.map((answer) => answer.generated_at)).size).toBe(1);
    expect(first[0]!.jobs.submitted).toBe(0);

    await suite.app.sql(
      `insert into jobs (id, customer_id, type, state, payload) values ($1, $2, 'invoke', 'queued', '{"substrate_id": "0x0000000000000001"}')`,
      [uuidv7(), customerId],
    );
    const reused = await stats(customerId);
    expect(reused.generated_at).toBe(first[0]!.generated_at);
    expect(reused.jobs.submitted).toBe(0);

    await sleep(350);
    const fresh = await stats(customerId);
    expect(fresh.generated_at > first[0]!.generated_at).toBe(true);
    expect(fresh.jobs.submitted).toBe(1);
    expect(fresh.jobs.by_state.queued).toBe(1);
    // Another customer's (or the admins') calls have readings of their own.
    expect((await stats(null)).jobs.submitted).toBeGreaterThanOrEqual(5);
  });
});
