import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginAdmin, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { heldIds } from '../helpers/fair-lanes.js';
import { storedWeights } from '../../queue/fair-share/fair-share.js';

/** POST /admin/jobs/retry with fair sharing on: the retries take the fair path, and each failed job is retried once. */
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let adminToken: string;
let customerId: string;
let substrateId: string;

beforeAll(async () => {
  // No workers until a test starts them; no sweeps (they would re-lane what a test inspects).
  app = await startTestApp({ FAIR_SHARING: 'true', SWEEPER_INTERVAL_MS: '3600000' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  adminToken = await loginAdmin(request);
  customerId = (await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id as string;
  substrateId = await createExpressionSubstrate(request, alice.accessToken, 'x * 2');
}, 60_000);

afterAll(async () => {
  await app?.close();
});

/** Failed invoke rows of Alice's (as if a transient outage failed them), not in Redis; their retries can succeed. */
async function failedJobs(count: number, error: string): Promise<string[]> {
  const rows = await app.sql<{ id: string }>(
    `insert into jobs (id, customer_id, type, state, payload, error, max_attempts, attempts_made, finished_at)
     select gen_random_uuid(), $1, 'invoke', 'failed', jsonb_build_object('substrate_id', $2::text, 'parameters', jsonb_build_object('x', g)),
            $3, 1, 1, now()
       from generate_series(1, $4::int) g
     returning id`,
    [customerId, substrateId, error, count],
  );
  return rows.map((row) => row.id);
}

const retry = (body: Record<string, unknown>) => request('POST', '/api/v1/admin/jobs/retry', { token: adminToken, body });

describe('POST /admin/jobs/retry with FAIR_SHARING=true', () => {
  it("admits each retry to its shard's fair share (released or held in the customer's lane), and the retry completes", async () => {
    const [original] = await failedJobs(1, 'fair path outage');
    const answer = await retry({ customer_id: customerId, error_contains: 'fair path outage' });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ matched: 1, retried: 1 });
    const [id] = answer.body.job_ids as string[];

    const shard = app.deps.queues.forJob('invoke', id!).qualifiedName;
    const inflight = await app.deps.redis.zscore(`${shard}:fair:inflight`, id!);
    const held = (await heldIds(app.deps.redis, shard, customerId)).includes(id!);
    expect(inflight !== null || held, 'the retry went through fair admission').toBe(true);

    await app.startWorkers();
    const done = await waitFor(async () => {
      const job = await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken });
      return job.body.state === 'completed' ? job.body : null;
    }, 20_000);
    expect(done).toMatchObject({ retry_of: original });
    // Its finish was charged to the fair share: it left the shard's in-flight window.
    await waitFor(async () => (await app.deps.redis.zscore(`${shard}:fair:inflight`, id!)) === null);
    await app.stopWorkers();
  }, 60_000);
});

describe("an admin's retry of a pro customer's jobs", () => {
  it("weighs them in fair sharing as the customer's own pro submits, not as a starter's", async () => {
    await app.sql(`update service_instances set tier = 'pro' where customer_id = $1 and service_type = 'compute'`, [customerId]);
    try {
      await failedJobs(1, 'weighed retry outage');
      const answer = await retry({ customer_id: customerId, error_contains: 'weighed retry outage' });
      expect(answer.body).toMatchObject({ matched: 1, retried: 1 });
      const shard = app.deps.queues.forJob('invoke', (answer.body.job_ids as string[])[0]!).qualifiedName;
      const weights = await storedWeights(app.deps.redis, shard, [customerId]);
      expect(weights.get(customerId)).toBe(app.deps.fair!.weightOf('pro'));
      expect(app.deps.fair!.weightOf('pro')).toBeGreaterThan(1);
    } finally {
      await app.sql(`update service_instances set tier = 'starter' where customer_id = $1 and service_type = 'compute'`, [customerId]);
    }
  });
});

describe('retrying the same failed jobs concurrently', () => {
  it('creates exactly one retry per failed job from 3 concurrent admin retries', async () => {
    const originals = await failedJobs(200, 'concurrent outage');
    const answers = await Promise.all(
      Array.from({ length: 3 }, () => retry({ customer_id: customerId, error_contains: 'concurrent outage', limit: 1000 })),
    );
    for (const answer of answers) expect(answer.status, answer.text).toBe(200);
    expect(answers.reduce((sum, answer) => sum + (answer.body.retried as number), 0)).toBe(200);
    const retries = await app.sql<{ retry_of: string; n: string }>(
      `select retry_of, count(*) as n from jobs where retry_of = any($1::uuid[]) group by retry_of`,
      [originals],
    );
    expect(retries).toHaveLength(200);
    expect(retries.every((row) => Number(row.n) === 1)).toBe(true);
  }, 60_000);

  it('creates one retry from 3 concurrent POST /jobs/:id/retry of one job, and answers each with it', async () => {
    const [original] = await failedJobs(1, 'customer outage');
    const answers = await Promise.all(
      Array.from({ length: 3 }, () => request('POST', `/api/v1/jobs/${original}/retry`, { token: alice.accessToken })),
    );
    for (const answer of answers) expect(answer.status, answer.text).toBe(202);
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1);
    const [count] = await app.sql<{ n: string }>(`select count(*) as n from jobs where retry_of = $1`, [original]);
    expect(Number(count!.n)).toBe(1);
  }, 60_000);
});
