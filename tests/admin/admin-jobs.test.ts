import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { outOfRangeTimes } from '../helpers/out-of-range-times.js';
import { useTestApp } from '../helpers/suite.js';

/** The operators' job tools (SPEC §9, issue 19): search across customers, bulk retry and cancel, pause, audit. */
// FIFO: the pause test watches BullMQ set a paused customer's job aside (fair sharing holds it in its lane: fair-pause.test.ts).
const suite = useTestApp({ workers: true, users: 2, env: { FAIR_SHARING: 'false' } });
const tokens = { a: '', b: '', admin: '' };
const customers = { a: '', b: '' };
const substrates = { a: '', b: '' };
const failedOfA: string[] = [];

const customerOf = async (token: string) => (await suite.request('GET', '/api/v1/auth/me', { token })).body.customer_id as string;
const substrateOf = async (token: string) =>
  (await suite.request('POST', '/api/v1/substrates', { token, body: { expression_type: 'expression', expression: 'x * 2' } })).body
    .substrate_id as string;
const invoke = async (
  token: string,
  substrateId: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = { prefer: 'wait=20' },
) => {
  const response = await suite.request('POST', '/api/v1/jobs', {
    token,
    headers,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 3 } }, attempts: 1, ...extra },
  });
  expect([200, 202], response.text).toContain(response.status);
  return response.body as { id: string; state: string };
};
const admin = (method: string, path: string, body?: unknown) => suite.request(method, `/api/v1${path}`, { token: tokens.admin, body });

beforeAll(async () => {
  tokens.a = suite.users[0]!.accessToken;
  tokens.b = suite.users[1]!.accessToken;
  tokens.admin = await loginAdmin(suite.request);
  customers.a = await customerOf(tokens.a);
  customers.b = await customerOf(tokens.b);
  substrates.a = await substrateOf(tokens.a);
  substrates.b = await substrateOf(tokens.b);
  for (let i = 0; i < 3; i++) {
    const job = await invoke(tokens.a, substrates.a, {
      payload: { substrate_id: substrates.a, parameters: { x: i }, operation: { op: 'modulus', modulus: 0 } },
    });
    expect(job.state).toBe('failed');
    failedOfA.push(job.id);
  }
  await invoke(tokens.a, substrates.a);
  // B fails too, with another error: the admin's filters must tell them apart.
  expect(
    (
      await invoke(tokens.b, substrates.b, {
        payload: { substrate_id: substrates.b, parameters: {}, operation: { op: 'root', degree: 2 } },
      })
    ).state,
  ).toBeDefined();
}, 90_000);

describe('admin routes refuse customers', () => {
  it('answers a customer 403 on every admin job route, the same with or without a body', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v1/admin/jobs', undefined],
      ['POST', '/api/v1/admin/jobs/retry', { dry_run: true }],
      ['POST', '/api/v1/admin/jobs/cancel', { dry_run: true }],
      ['POST', `/api/v1/admin/customers/${customers.a}/pause`, undefined],
      ['POST', `/api/v1/admin/customers/${customers.a}/resume`, undefined],
      ['GET', '/api/v1/admin/audit', undefined],
    ] as const) {
      expectProblem(await suite.request(method, path, { token: tokens.b, body }), 403, 'forbidden');
    }
  });
});

describe('GET /admin/jobs', () => {
  it("finds one customer's failed jobs by error text, with customer_id, and refuses a too-short text", async () => {
    const found = await admin('GET', `/admin/jobs?customer_id=${customers.a}&state=failed&error_contains=MODULUS`);
    expect(found.status, found.text).toBe(200);
    expect(found.body.items.map((job: { id: string }) => job.id)).toEqual([...failedOfA].reverse());
    expect(found.body.items[0]).toMatchObject({ customer_id: customers.a, state: 'failed', error: expect.stringMatching(/modulus/) });
    const everyone = await admin('GET', '/admin/jobs?state=failed,completed');
    const owners = new Set(everyone.body.items.map((job: { customer_id: string }) => job.customer_id));
    expect(owners).toEqual(new Set([customers.a, customers.b]));
    expect((await admin('GET', '/admin/jobs?error_contains=100%25_x')).body.items).toEqual([]);
    expectProblem(await admin('GET', '/admin/jobs?error_contains=mo'), 400, 'validation', ['query.error_contains']);
    expectProblem(await admin('GET', '/admin/jobs?customer_id=nobody'), 400, 'validation', ['query.customer_id']);
    expectProblem(await admin('GET', '/admin/jobs?state=lost'), 400, 'validation', ['query.state']);
  });
});

describe('POST /admin/jobs/retry', () => {
  it('dry-runs (count and sample, nothing retried), refuses a limit past 10,000, then retries each matching job once', async () => {
    const filters = { customer_id: customers.a, error_contains: 'modulus' };
    const dry = await admin('POST', '/admin/jobs/retry', { ...filters, dry_run: true });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body).toMatchObject({ dry_run: true, matched: 3, retried: 0, job_ids: [] });
    expect(dry.body.sample.map((job: { id: string }) => job.id)).toEqual([...failedOfA].reverse());
    expect((await admin('GET', `/admin/jobs?customer_id=${customers.a}&state=queued,active`)).body.items).toEqual([]);

    expectProblem(await admin('POST', '/admin/jobs/retry', { ...filters, limit: 10_001 }), 422, 'unprocessable', ['body.limit']);
    expectProblem(await admin('POST', '/admin/jobs/retry', { ...filters, state: 'failed' }), 400, 'validation', ['body.state']);
    expectProblem(await admin('POST', '/admin/jobs/retry', { created_after: 'last week' }), 400, 'validation', ['body.created_after']);
    for (const time of outOfRangeTimes) {
      expectProblem(await admin('POST', '/admin/jobs/retry', { created_before: time, dry_run: true }), 400, 'validation', [
        'body.created_before',
      ]);
      expectProblem(await admin('GET', `/admin/jobs?created_after=${encodeURIComponent(time)}`), 400, 'validation', [
        'query.created_after',
      ]);
    }

    const real = await admin('POST', '/admin/jobs/retry', { ...filters, limit: 2 });
    expect(real.body).toMatchObject({ dry_run: false, matched: 2, retried: 2 });
    // The retries fail again (modulus 0) and are failed jobs too; the originals alone end before this time.
    const [last] = await suite.app.sql<{ created_at: Date }>('select created_at from jobs where id = $1', [failedOfA[2]]);
    const originals = { ...filters, created_before: new Date(last!.created_at.getTime() + 1).toISOString() };
    const rest = await admin('POST', '/admin/jobs/retry', originals);
    expect(rest.body).toMatchObject({ matched: 1, retried: 1 });
    expect((await admin('POST', '/admin/jobs/retry', originals)).body, 'each job is retried once').toMatchObject({
      matched: 0,
      retried: 0,
    });
    const retries = [...real.body.job_ids, ...rest.body.job_ids] as string[];
    for (const id of retries) {
      const job = await waitFor(async () => {
        const answer = await suite.request('GET', `/api/v1/jobs/${id}`, { token: tokens.a });
        return answer.body.state === 'failed' ? answer.body : null;
      });
      expect(failedOfA).toContain(job.retry_of);
    }
  });
});

describe('POST /admin/jobs/cancel', () => {
  it("dry-runs, then cancels only the matching customer's unfinished jobs", async () => {
    const delayed = await invoke(tokens.b, substrates.b, { delay_ms: 3_600_000 }, {});
    const aDelayed = await invoke(tokens.a, substrates.a, { delay_ms: 3_600_000 }, {});
    const dry = await admin('POST', '/admin/jobs/cancel', { customer_id: customers.b, dry_run: true });
    expect(dry.body).toMatchObject({ dry_run: true, matched: 1, cancelled: 0 });
    expect(dry.body.sample[0]).toMatchObject({ id: delayed.id, state: 'delayed', customer_id: customers.b });
    expectProblem(await admin('POST', '/admin/jobs/cancel', { state: ['failed'] }), 400, 'validation', ['body.state.0']);
    const real = await admin('POST', '/admin/jobs/cancel', { customer_id: customers.b });
    expect(real.body).toMatchObject({ dry_run: false, matched: 1, cancelled: 1, job_ids: [delayed.id] });
    expect((await suite.request('GET', `/api/v1/jobs/${delayed.id}`, { token: tokens.b })).body.state).toBe('cancelled');
    expect((await suite.request('GET', `/api/v1/jobs/${aDelayed.id}`, { token: tokens.a })).body.state).toBe('delayed');
  });
});

describe('pausing a customer', () => {
  it('keeps its new jobs queued (not started) until resumed, then runs them; 404 for no customer', async () => {
    const paused = await admin('POST', `/admin/customers/${customers.a}/pause`);
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body).toMatchObject({ customer_id: customers.a, paused: true, paused_at: expect.any(String) });
    // Workers read the paused set every 2 s: wait until a job of A is set aside rather than run.
    const job = await waitFor(
      async () => {
        const submitted = await invoke(tokens.a, substrates.a, {}, {});
        const setAside = await waitFor(async () => {
          const bull = await suite.app.deps.queues.forJob('invoke', submitted.id).getJob(submitted.id);
          const row = await suite.request('GET', `/api/v1/jobs/${submitted.id}`, { token: tokens.a });
          if (row.body.state === 'completed') return 'ran';
          return bull && (await bull.isDelayed()) ? 'set aside' : null;
        }, 10_000);
        return setAside === 'set aside' ? submitted : null;
      },
      20_000,
      500,
    );
    expect((await suite.request('GET', `/api/v1/jobs/${job.id}`, { token: tokens.a })).body.state).toBe('queued');
    expect((await invoke(tokens.b, substrates.b)).state, "B's work is not paused").toBe('completed');

    const resumed = await admin('POST', `/admin/customers/${customers.a}/resume`);
    expect(resumed.body).toMatchObject({ customer_id: customers.a, paused: false, paused_at: null });
    await waitFor(
      async () => (await suite.request('GET', `/api/v1/jobs/${job.id}`, { token: tokens.a })).body.state === 'completed',
      15_000,
    );
    expectProblem(await admin('POST', '/admin/customers/0193a000-0000-7000-8000-000000000000/pause'), 404, 'not-found');
  }, 60_000);
});

describe('GET /admin/audit', () => {
  it('lists the admin actions newest first, filtered by customer or action', async () => {
    const credit = await admin('POST', `/admin/customers/${customers.b}/credits`, { amount_usd_cents: 500, reason: 'goodwill' });
    expect(credit.status, credit.text).toBe(201);
    const all = await admin('GET', '/admin/audit?limit=100');
    expect(all.status, all.text).toBe(200);
    const actions = all.body.items.map((entry: { action: string }) => entry.action);
    for (const action of [
      'customer.credit',
      'customer.resume',
      'customer.pause',
      'jobs.cancel',
      'jobs.cancel.dry-run',
      'jobs.retry',
      'jobs.retry.dry-run',
      'jobs.view',
    ])
      expect(actions).toContain(action);
    expect(actions[0], actions.join(' ')).toBe('customer.credit');
    expect(all.body.items[0]).toMatchObject({
      customer_id: customers.b,
      admin_user_id: expect.any(String),
      details: { amount_usd_cents: 500 },
    });
    const ofA = await admin('GET', `/admin/audit?customer_id=${customers.a}&action=jobs.retry`);
    expect(ofA.body.items).toHaveLength(3);
    expect(ofA.body.items.map((entry: { details: { retried: number } }) => entry.details.retried)).toEqual([0, 1, 2]);
    expectProblem(await admin('GET', '/admin/audit?action=DROP TABLE'), 400, 'validation', ['query.action']);
    expectProblem(await admin('GET', '/admin/audit?cursor=abc'), 400, 'validation', ['query.cursor']);
  });
});
