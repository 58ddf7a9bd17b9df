import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { deposit } from '../../jobs/billing/account-operations.js';
import { billingJob } from '../../jobs/billing/billing.job.js';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { addUsage, billingState, checkLedger, customerIdOf, ingest, runJob, seedCustomer, usageLines } from './back-office-fixtures.js';

let app: TestApp;
let orm: Orm;
let request: ReturnType<typeof httpClient>;
let adminToken: string;

beforeAll(async () => {
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false' });
  await app.startWorkers();
  orm = await createOrm(app.config.databaseUrl, { poolMax: 40 });
  request = httpClient(app.baseUrl);
  adminToken = await loginAdmin(request);
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

/** Runs a back-office job the way an admin does: POST /jobs, waiting for it to finish. */
async function runAsAdmin(type: string): Promise<Record<string, unknown>> {
  const response = await request('POST', '/api/v1/jobs', {
    token: adminToken,
    headers: { prefer: 'wait=25' },
    body: { type, payload: {} },
  });
  expect(response.status, response.text).toBe(200);
  expect(response.body.state, JSON.stringify(response.body)).toBe('completed');
  return response.body.result;
}

async function snapshot(customerIds: string[]) {
  const records = await app.sql(
    `select id, customer_id, service_type, window_start, request_count, bytes_transferred, charged_usd_cents, charge_id, updated_at from usage_records where customer_id = any($1::uuid[]) order by id`,
    [customerIds],
  );
  const transactions = await app.sql(`select * from escrow_transactions where customer_id = any($1::uuid[]) order by id`, [customerIds]);
  const accounts = await app.sql(`select * from escrow_accounts order by id`);
  return { records, transactions, accounts };
}

describe('metering then billing, end to end', () => {
  it('bills two customers ingested usage to the exact cent, and billing again changes nothing', async () => {
    const alice = await registerUser(request);
    const bob = await registerUser(request);
    const aliceId = await customerIdOf(request, alice.accessToken);
    const bobId = await customerIdOf(request, bob.accessToken);
    expect((await request('POST', '/api/v1/billing/deposits', { token: alice.accessToken, body: { amount_usd_cents: 5000 } })).status).toBe(
      201,
    );
    expect((await request('PUT', '/api/v1/services/seal', { token: alice.accessToken, body: { tier: 'pro', enabled: true } })).status).toBe(
      200,
    );
    expect((await request('POST', '/api/v1/billing/deposits', { token: bob.accessToken, body: { amount_usd_cents: 1000 } })).status).toBe(
      201,
    );
    expect(
      (await request('PUT', '/api/v1/services/seal', { token: bob.accessToken, body: { tier: 'starter', enabled: true } })).status,
    ).toBe(200);

    const seal = { service_type: 'seal', method: 'GET', status_code: 200 };
    const ingested = await ingest(request, adminToken, [
      ...usageLines(1000, { ...seal, timestamp: '2026-01-05T10:00:01Z', customer_id: aliceId, bytes_out: 2_000_000 }),
      ...usageLines(500, { ...seal, timestamp: '2026-01-05T11:30:00Z', customer_id: aliceId, bytes_out: 1_000_000 }),
      ...usageLines(250, { ...seal, timestamp: '2026-01-05T10:59:59Z', customer_id: bobId, bytes_out: 0 }),
      ...usageLines(2, { ...seal, timestamp: '2026-01-05T10:20:00Z', customer_id: bobId, bytes_out: 10, status_code: 500 }),
      ...usageLines(1, { ...seal, timestamp: '2026-01-05T10:20:00Z', customer_id: bobId, bytes_out: 10, status_code: 429 }),
      '{"broken":',
    ]);
    expect(ingested.body).toMatchObject({ accepted: 1753, rejected_count: 1, rejected: [{ line: 1754 }] });
    await app.deps.requestLog.flush();

    const metering = await runAsAdmin('metering');
    expect(metering.rows).toBeGreaterThanOrEqual(1753);
    const billing = await runAsAdmin('billing');
    expect(billing).toMatchObject({ charged_usd_cents: 48, suspended: [] });

    // Seal, pro: 1,000 requests × 0.015¢ + 2 GB × 8¢ = 15¢ + 16¢ = 31¢; 500 × 0.015¢ + 0.5 GB × 8¢ = 7.5¢ + 4¢ = 11.5¢ → 12¢ (half up).
    // Seal, starter: 250 × 0.02¢ = 5¢; the 500s and the 429 are not usage. Compute: 3 calls × 0.01¢ = 0.03¢ → 0¢.
    const usage = await app.sql(
      `select customer_id, service_type, to_char(window_start at time zone 'UTC', 'HH24') as hour, request_count::int, bytes_transferred::float8 as bytes, charged_usd_cents::int
         from usage_records where customer_id in ($1, $2) order by customer_id = $1 desc, service_type, window_start`,
      [aliceId, bobId],
    );
    expect(usage).toEqual([
      {
        customer_id: aliceId,
        service_type: 'compute',
        hour: expect.any(String),
        request_count: 3,
        bytes: expect.any(Number),
        charged_usd_cents: 0,
      },
      { customer_id: aliceId, service_type: 'seal', hour: '10', request_count: 1000, bytes: 2e9, charged_usd_cents: 31 },
      { customer_id: aliceId, service_type: 'seal', hour: '11', request_count: 500, bytes: 5e8, charged_usd_cents: 12 },
      {
        customer_id: bobId,
        service_type: 'compute',
        hour: expect.any(String),
        request_count: 3,
        bytes: expect.any(Number),
        charged_usd_cents: 0,
      },
      { customer_id: bobId, service_type: 'seal', hour: '10', request_count: 250, bytes: 0, charged_usd_cents: 5 },
    ]);

    const aliceBalance = await request('GET', '/api/v1/billing/balance', { token: alice.accessToken });
    expect(aliceBalance.body).toMatchObject({
      balance_usd_cents: 4957,
      current_month_charged_usd_cents: 43,
      outstanding_usd_cents: 0,
      suspended_reason: null,
    });
    const bobBalance = await request('GET', '/api/v1/billing/balance', { token: bob.accessToken });
    expect(bobBalance.body).toMatchObject({ balance_usd_cents: 995, current_month_charged_usd_cents: 5, outstanding_usd_cents: 0 });
    const aliceLedger = await request('GET', '/api/v1/billing/transactions', { token: alice.accessToken });
    expect(aliceLedger.body.items.map((t: { type: string; amount_usd_cents: number }) => [t.type, t.amount_usd_cents])).toEqual([
      ['charge', 43],
      ['deposit', 5000],
    ]);
    const ledger = await checkLedger(app);
    expect(ledger.balances[aliceId]).toBe(4957);
    expect(ledger.balances[bobId]).toBe(995);

    // Their calls since (balance, transactions) are logged but not metered yet, so the second run has nothing to bill.
    const before = await snapshot([aliceId, bobId]);
    const again = await runAsAdmin('billing');
    expect(again).toMatchObject({ charged: 0, charged_usd_cents: 0 });
    expect(await snapshot([aliceId, bobId])).toEqual(before);
    expect((await checkLedger(app)).transactions).toBe(ledger.transactions);
  });

  it('suspends a customer without balance (402 on its service) and a deposit that covers the debt resumes it', async () => {
    const carol = await registerUser(request);
    const carolId = await customerIdOf(request, carol.accessToken);
    expect((await request('GET', '/api/v1/jobs', { token: carol.accessToken })).status).toBe(200);
    await ingest(
      request,
      adminToken,
      usageLines(1000, {
        timestamp: '2026-01-05T09:00:00Z',
        customer_id: carolId,
        service_type: 'compute',
        method: 'POST',
        status_code: 202,
        bytes_out: 0,
      }),
    );
    await app.deps.requestLog.flush();
    await runAsAdmin('metering');
    const billing = await runAsAdmin('billing');
    expect(billing.suspended).toEqual([{ customer_id: carolId, reason: 'insufficient_balance', due_usd_cents: 10 }]);

    // The suspension reaches the API over Redis pub/sub (the billing job runs in a worker): on a Redis Cluster the
    // message can land a moment after the billing run's answer.
    const refused = await waitFor(async () => {
      const answer = await request('GET', '/api/v1/jobs', { token: carol.accessToken });
      return answer.status === 402 ? answer : null;
    }, 5000);
    expectProblem(refused, 402, 'payment-required');
    expect(refused.body).toMatchObject({ reason: 'insufficient_balance', service_type: 'compute' });
    const balance = await request('GET', '/api/v1/billing/balance', { token: carol.accessToken });
    expect(balance.body).toMatchObject({ balance_usd_cents: 0, outstanding_usd_cents: 10, suspended_reason: 'insufficient_balance' });
    expect((await billingState(app, carolId)).balance).toBe(0);

    const tooLittle = await request('POST', '/api/v1/billing/deposits', { token: carol.accessToken, body: { amount_usd_cents: 5 } });
    expect(tooLittle.body).toMatchObject({ balance_usd_cents: 5, suspended_reason: 'insufficient_balance', services_resumed: false });
    expectProblem(await request('GET', '/api/v1/jobs', { token: carol.accessToken }), 402, 'payment-required');

    const enough = await request('POST', '/api/v1/billing/deposits', { token: carol.accessToken, body: { amount_usd_cents: 100 } });
    expect(enough.status).toBe(201);
    expect(enough.body).toMatchObject({ balance_usd_cents: 105, suspended_reason: null, services_resumed: true });
    expect((await request('GET', '/api/v1/jobs', { token: carol.accessToken })).status).toBe(200);

    await app.deps.requestLog.flush();
    await runAsAdmin('metering');
    await runAsAdmin('billing');
    const after = await billingState(app, carolId);
    expect(after.charges).toEqual([10]);
    expect(after.balance).toBe(95);
    expect(after.suspendedReasons).toEqual([null]);
  });
});

describe('billing invariants', () => {
  it('billing twice charges once', async () => {
    const customer = await seedCustomer(app, { depositUsdCents: 1000, usage: [{ requests: 500 }, { requests: 100, hour: 11 }] });
    await runJob(billingJob, app, orm);
    const first = await billingState(app, customer);
    await runJob(billingJob, app, orm);
    const second = await billingState(app, customer);
    expect(first).toEqual({
      balance: 988,
      monthCharged: 12,
      charges: [12],
      unbilledRecords: 0,
      chargedOnRecords: 12,
      suspendedReasons: [null],
    });
    expect(second).toEqual(first);
    await checkLedger(app);
  });

  it('ten concurrent billing runs make one set of postings', async () => {
    const customers = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        seedCustomer(app, { depositUsdCents: 500, usage: [{ requests: 100 * (i + 1) }, { requests: 50, hour: 12 }] }),
      ),
    );
    const before = await checkLedger(app);
    const results = await Promise.all(Array.from({ length: 10 }, () => runJob(billingJob, app, orm)));
    expect(results.reduce((sum, r) => sum + r.charged, 0)).toBe(5);
    for (const [i, customer] of customers.entries()) {
      const due = 2 * (i + 1) + 1;
      expect(await billingState(app, customer)).toMatchObject({
        charges: [due],
        balance: 500 - due,
        chargedOnRecords: due,
        unbilledRecords: 0,
      });
    }
    const after = await checkLedger(app);
    expect(after.transactions - before.transactions).toBe(5);
    expect(after.entries - before.entries).toBe(10);
  });

  it('keeps the ledger balanced and no balance below zero under concurrent deposits, usage and billing', async () => {
    const customers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => seedCustomer(app, { depositUsdCents: 3 + i, usage: [{ requests: 200 }] })),
    );
    const deposits = customers.flatMap((customer, i) =>
      Array.from({ length: 3 }, (_, n) =>
        deposit(orm.em.fork(), { customerId: customer, amountUsdCents: i % 2 === 0 ? 1 : 2, idempotencyKey: `mix:${customer}:${n}` }),
      ),
    );
    const usage = customers.map((customer, i) => addUsage(app, customer, { requests: 50 * i, hour: 13 }));
    const runs = Array.from({ length: 6 }, () => runJob(billingJob, app, orm));
    await Promise.all([...deposits, ...usage, ...runs]);
    await runJob(billingJob, app, orm);

    await checkLedger(app);
    for (const [i, customer] of customers.entries()) {
      const state = await billingState(app, customer);
      const funded = 3 + i + 3 * (i % 2 === 0 ? 1 : 2);
      expect(state.balance).toBeGreaterThanOrEqual(0);
      expect(state.balance + state.charges.reduce((a, b) => a + b, 0)).toBe(funded);
      expect(state.chargedOnRecords).toBe(state.charges.reduce((a, b) => a + b, 0));
      // Either everything is paid, or the customer is suspended for what it cannot pay.
      if (state.unbilledRecords > 0) expect(state.suspendedReasons).toEqual(['insufficient_balance']);
      else expect(state.suspendedReasons).toEqual([null]);
    }
  });

  it('bills platform (admin) accounts nothing and never suspends them', async () => {
    const adminId = await customerIdOf(request, adminToken);
    await addUsage(app, adminId, { requests: 100_000, serviceType: 'compute', hour: 3 });
    await runJob(billingJob, app, orm);
    const state = await billingState(app, adminId);
    expect(state).toMatchObject({ charges: [], unbilledRecords: 0, chargedOnRecords: 0 });
    expect(state.suspendedReasons).toEqual([null]);
    expect((await request('GET', '/api/v1/jobs', { token: adminToken })).status).toBe(200);
  });

  it('publishes the suspension so API processes drop cached principals at once', async () => {
    const dave = await registerUser(request);
    const daveId = await customerIdOf(request, dave.accessToken);
    expect((await request('GET', '/api/v1/jobs', { token: dave.accessToken })).status).toBe(200);
    await addUsage(app, daveId, { requests: 1000, serviceType: 'compute', hour: 2 });
    await runJob(billingJob, app, orm);
    await waitFor(async () => (await request('GET', '/api/v1/jobs', { token: dave.accessToken })).status === 402, 5000);
  });
});
