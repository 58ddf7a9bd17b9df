import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { billingJob } from '../../jobs/billing/billing.job.js';
import { meteringJob } from '../../jobs/metering/metering.job.js';
import { monthRolloverJob } from '../../jobs/month-rollover/month-rollover.job.js';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { outOfRangeTimes } from '../helpers/out-of-range-times.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { customerIdOf, ingest, runJob, usageLines } from './back-office-fixtures.js';

let app: TestApp;
let orm: Orm;
let request: ReturnType<typeof httpClient>;
let adminToken: string;

beforeAll(async () => {
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false' });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 10 });
  request = httpClient(app.baseUrl);
  adminToken = await loginAdmin(request);
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

/** Ingests `requests` compute calls for the customer (0.01¢ each at starter) and meters and bills everything. */
async function useAndBill(customerId: string, requests: number, hour = 9): Promise<void> {
  const at = `2026-01-05T${String(hour).padStart(2, '0')}:00:00Z`;
  const response = await ingest(
    request,
    adminToken,
    usageLines(requests, {
      timestamp: at,
      customer_id: customerId,
      service_type: 'compute',
      method: 'POST',
      status_code: 200,
      bytes_out: 0,
    }),
  );
  expect(response.status).toBe(200);
  await app.deps.requestLog.flush();
  await runJob(meteringJob, app, orm);
  await runJob(billingJob, app, orm);
}

async function newCustomer(): Promise<TestUser & { id: string }> {
  const user = await registerUser(request);
  return { ...user, id: await customerIdOf(request, user.accessToken) };
}

describe('POST /billing/deposits', () => {
  it('credits the balance and records a deposit in the ledger (201)', async () => {
    const user = await newCustomer();
    const response = await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 2500 } });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      balance_usd_cents: 2500,
      suspended_reason: null,
      services_resumed: false,
      transaction: { type: 'deposit', amount_usd_cents: 2500 },
    });
    expect(response.body.transaction.tx_digest).toMatch(/^0x[0-9a-f]{64}$/);
    const balance = await request('GET', '/api/v1/billing/balance', { token: user.accessToken });
    expect(balance.body).toMatchObject({
      balance_usd_cents: 2500,
      outstanding_usd_cents: 0,
      current_month_charged_usd_cents: 0,
      max_monthly_usd_cents: null,
    });
  });

  it('rejects amounts that are not positive whole cents with 400, and more than the cap with 422', async () => {
    const user = await newCustomer();
    for (const body of [
      { amount_usd_cents: 0 },
      { amount_usd_cents: -5 },
      { amount_usd_cents: 1.5 },
      { amount_usd_cents: '100' },
      {},
      { amount_usd_cents: 5, note: 'x' },
    ]) {
      expectProblem(await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body }), 400, 'validation');
    }
    expectProblem(
      await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 1_000_001 } }),
      422,
      'unprocessable',
      ['body.amount_usd_cents'],
    );
    // 1e20 is a whole number too, past what a JSON number holds exactly: it is too big (422), not "not whole".
    const huge = await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 1e20 } });
    expectProblem(huge, 422, 'unprocessable', ['body.amount_usd_cents']);
    expect(huge.body.errors).toEqual([{ field: 'body.amount_usd_cents', message: 'must be at most 9007199254740991 (2^53 − 1)' }]);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body.balance_usd_cents).toBe(0);
  });

  it('replays a retried deposit with the same Idempotency-Key (200, no second credit) and refuses the key with another amount (422)', async () => {
    const user = await newCustomer();
    const headers = { 'idempotency-key': 'wallet-tx-1' };
    const first = await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, headers, body: { amount_usd_cents: 300 } });
    const again = await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, headers, body: { amount_usd_cents: 300 } });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.transaction.id).toBe(first.body.transaction.id);
    expect(again.body.balance_usd_cents).toBe(300);
    expectProblem(
      await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, headers, body: { amount_usd_cents: 301 } }),
      422,
      'unprocessable',
      ['header.idempotency-key'],
    );
    // Keys are per customer: another customer may use the same one.
    const other = await newCustomer();
    expect(
      (await request('POST', '/api/v1/billing/deposits', { token: other.accessToken, headers, body: { amount_usd_cents: 7 } })).status,
    ).toBe(201);
  });

  it('needs a user token: an API key gets 403 (it may still read the balance)', async () => {
    const user = await newCustomer();
    const key = await request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name: 'ci', service_type: 'compute' } });
    expect(key.status).toBe(201);
    expectProblem(
      await request('POST', '/api/v1/billing/deposits', { token: key.body.key, body: { amount_usd_cents: 5 } }),
      403,
      'forbidden',
    );
    expect((await request('GET', '/api/v1/billing/balance', { token: key.body.key })).status).toBe(200);
  });

  it('answers 401 without credentials', async () => {
    expectProblem(await request('GET', '/api/v1/billing/balance'), 401, 'unauthorized');
  });
});

describe('POST /admin/customers/:id/credits', () => {
  const credit = (customerId: string, body: unknown, token = adminToken, headers: Record<string, string> = {}) =>
    request('POST', `/api/v1/admin/customers/${customerId}/credits`, { token, body, headers });

  it('credits the customer (201): a ledger entry of type credit naming the admin and the reason, in the balance and the transactions', async () => {
    const user = await newCustomer();
    await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 100 } });
    const admin = await request('GET', '/api/v1/auth/me', { token: adminToken });
    const response = await credit(user.id, { amount_usd_cents: 700, reason: 'refund for the outage of 3 March' });
    expect(response.status, response.text).toBe(201);
    expect(response.body).toMatchObject({
      customer_id: user.id,
      credited_by: admin.body.id,
      balance_usd_cents: 800,
      transaction: { type: 'credit', amount_usd_cents: 700 },
    });
    const transactions = await request('GET', '/api/v1/billing/transactions', { token: user.accessToken });
    expect(transactions.body.items).toMatchObject([
      { type: 'credit', amount_usd_cents: 700, reason: 'refund for the outage of 3 March' },
      { type: 'deposit', amount_usd_cents: 100, reason: null },
    ]);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body.balance_usd_cents).toBe(800);
    const [row] = await app.sql('select created_by from escrow_transactions where id = $1', [response.body.transaction.id]);
    expect(row).toEqual({ created_by: admin.body.id });
  });

  it('resumes a customer suspended for want of balance, like a deposit does', async () => {
    const user = await newCustomer();
    await useAndBill(user.id, 1000, 11);
    await waitFor(async () => (await request('GET', '/api/v1/jobs', { token: user.accessToken })).status === 402, 5000);
    const response = await credit(user.id, { amount_usd_cents: 50, reason: 'first bill on us' });
    // Resumed because the balance now covers what is owed; the next billing run charges it.
    expect(response.body).toMatchObject({ suspended_reason: null, services_resumed: true, balance_usd_cents: 50 });
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
  });

  it('answers 404 for an unknown customer and 400 for an id that is not a UUID', async () => {
    expectProblem(await credit('0190f0f0-0000-7000-8000-000000000000', { amount_usd_cents: 5, reason: 'x' }), 404, 'not-found');
    expectProblem(await credit('not-a-uuid', { amount_usd_cents: 5, reason: 'x' }), 400, 'validation', ['params.id']);
  });

  it('validates the body: 400 for cents that are not positive whole numbers, a missing, empty or over-long reason, unknown fields; 422 above the cap', async () => {
    const user = await newCustomer();
    const bad = [
      { amount_usd_cents: 0, reason: 'x' },
      { amount_usd_cents: -5, reason: 'x' },
      { amount_usd_cents: 1.5, reason: 'x' },
      { amount_usd_cents: '100', reason: 'x' },
      { amount_usd_cents: 5 },
      { amount_usd_cents: 5, reason: '' },
      { amount_usd_cents: 5, reason: '   ' },
      { amount_usd_cents: 5, reason: 'x'.repeat(501) },
      { amount_usd_cents: 5, reason: 'x', note: 'y' },
    ];
    for (const body of bad) expectProblem(await credit(user.id, body), 400, 'validation');
    expectProblem(await credit(user.id, { amount_usd_cents: 5, reason: 42 }), 400, 'validation', ['body.reason']);
    expectProblem(await credit(user.id, { amount_usd_cents: 1_000_001, reason: 'too generous' }), 422, 'unprocessable', [
      'body.amount_usd_cents',
    ]);
    expect((await credit(user.id, { amount_usd_cents: 1, reason: 'x'.repeat(500) })).status).toBe(201);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body.balance_usd_cents).toBe(1);
  });

  it('is for administrators: a customer gets 403 whichever customer it names, its own included, and no money moves', async () => {
    const user = await newCustomer();
    const other = await newCustomer();
    for (const id of [user.id, other.id, '0190f0f0-0000-7000-8000-000000000000']) {
      expectProblem(await credit(id, { amount_usd_cents: 100_000, reason: 'free money' }, user.accessToken), 403, 'forbidden');
    }
    const key = await request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name: 'ci', service_type: 'compute' } });
    expectProblem(await credit(user.id, { amount_usd_cents: 100_000, reason: 'free money' }, key.body.key), 403, 'forbidden');
    expectProblem(await credit(user.id, { amount_usd_cents: 100_000, reason: 'free money' }, ''), 401, 'unauthorized');
    for (const customer of [user, other])
      expect((await request('GET', '/api/v1/billing/balance', { token: customer.accessToken })).body.balance_usd_cents).toBe(0);
  });

  it('replays a retried credit with the same Idempotency-Key (200, credited once) and refuses the key with another amount (422)', async () => {
    const user = await newCustomer();
    const headers = { 'idempotency-key': 'ticket-4711' };
    const first = await credit(user.id, { amount_usd_cents: 300, reason: 'goodwill' }, adminToken, headers);
    const again = await credit(user.id, { amount_usd_cents: 300, reason: 'goodwill' }, adminToken, headers);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.transaction.id).toBe(first.body.transaction.id);
    expect(again.body.balance_usd_cents).toBe(300);
    expectProblem(await credit(user.id, { amount_usd_cents: 301, reason: 'goodwill' }, adminToken, headers), 422, 'unprocessable', [
      'header.idempotency-key',
    ]);
  });
});

describe('GET /billing/usage and /billing/transactions', () => {
  it('shows a usage window of year 0001 as 0001, not 2001', async () => {
    const user = await newCustomer();
    await ingest(request, adminToken, [
      { timestamp: '0001-01-01T00:10:00Z', customer_id: user.id, service_type: 'compute', method: 'GET', status_code: 200, bytes_out: 1 },
    ]);
    await runJob(meteringJob, app, orm);
    const usage = await request('GET', '/api/v1/billing/usage?from=0001-01-01&to=0002-01-01', { token: user.accessToken });
    expect(usage.status).toBe(200);
    expect(usage.body.items).toMatchObject([{ window_start: '0001-01-01T00:00:00.000Z', window_end: '0001-01-01T01:00:00.000Z' }]);
  });

  it('lists usage records in a time range, cursor-paginated, and only the caller\u2019s', async () => {
    const user = await newCustomer();
    await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 100 } });
    for (const hour of [6, 7, 8]) {
      await ingest(
        request,
        adminToken,
        usageLines(100, {
          timestamp: `2026-01-05T0${hour}:10:00Z`,
          customer_id: user.id,
          service_type: 'compute',
          method: 'GET',
          status_code: 200,
          bytes_out: 10,
        }),
      );
    }
    await app.deps.requestLog.flush();
    await runJob(meteringJob, app, orm);
    await runJob(billingJob, app, orm);

    const range = '&from=2026-01-05T06:00:00Z&to=2026-01-05T08:00:00Z';
    const first = await request('GET', `/api/v1/billing/usage?limit=1${range}`, { token: user.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.items).toEqual([
      {
        id: expect.any(String),
        service_type: 'compute',
        window_start: '2026-01-05T07:00:00.000Z',
        window_end: '2026-01-05T08:00:00.000Z',
        request_count: 100,
        bytes_transferred: 1000,
        charged_usd_cents: 1,
      },
    ]);
    const second = await request('GET', `/api/v1/billing/usage?limit=1${range}&cursor=${first.body.next_cursor}`, {
      token: user.accessToken,
    });
    expect(second.body.items.map((i: { window_start: string }) => i.window_start)).toEqual(['2026-01-05T06:00:00.000Z']);
    expect(second.body.next_cursor).toBeNull();

    // Dates alone (ISO 8601 too) mean their day's start in UTC.
    const byDate = await request('GET', '/api/v1/billing/usage?from=2026-01-05&to=2026-01-06', { token: user.accessToken });
    expect(byDate.body.items.map((i: { window_start: string }) => i.window_start)).toEqual([
      '2026-01-05T08:00:00.000Z',
      '2026-01-05T07:00:00.000Z',
      '2026-01-05T06:00:00.000Z',
    ]);
    expect((await request('GET', '/api/v1/billing/usage?from=2026-01-06&to=2026-01-07', { token: user.accessToken })).body.items).toEqual(
      [],
    );

    const stranger = await newCustomer();
    expect((await request('GET', `/api/v1/billing/usage?${range.slice(1)}`, { token: stranger.accessToken })).body.items).toEqual([]);

    const transactions = await request('GET', '/api/v1/billing/transactions?limit=1', { token: user.accessToken });
    expect(transactions.body.items).toMatchObject([{ type: 'charge', amount_usd_cents: 3 }]);
    const older = await request('GET', `/api/v1/billing/transactions?limit=1&cursor=${transactions.body.next_cursor}`, {
      token: user.accessToken,
    });
    expect(older.body).toMatchObject({ items: [{ type: 'deposit', amount_usd_cents: 100 }], next_cursor: null });
  });

  it('rejects bad query parameters: 400 for malformed or unknown ones, 422 for from not before to', async () => {
    const user = await newCustomer();
    expectProblem(await request('GET', '/api/v1/billing/usage?from=yesterday', { token: user.accessToken }), 400, 'validation', [
      'query.from',
    ]);
    for (const time of outOfRangeTimes) {
      for (const field of ['from', 'to']) {
        const response = await request('GET', `/api/v1/billing/usage?${field}=${encodeURIComponent(time)}`, { token: user.accessToken });
        expectProblem(response, 400, 'validation', [`query.${field}`]);
      }
    }
    const widest = await request('GET', '/api/v1/billing/usage?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z', {
      token: user.accessToken,
    });
    expect(widest.status, widest.text).toBe(200);
    expectProblem(await request('GET', '/api/v1/billing/usage?service=seal', { token: user.accessToken }), 400, 'validation');
    expectProblem(await request('GET', '/api/v1/billing/usage?limit=101', { token: user.accessToken }), 400, 'validation', ['query.limit']);
    expectProblem(await request('GET', '/api/v1/billing/usage?cursor=forged', { token: user.accessToken }), 400, 'validation', [
      'query.cursor',
    ]);
    expectProblem(
      await request('GET', '/api/v1/billing/usage?from=2026-01-05T08:00:00Z&to=2026-01-05T08:00:00Z', { token: user.accessToken }),
      422,
      'unprocessable',
      ['query.from'],
    );
    expectProblem(await request('GET', '/api/v1/billing/transactions?limit=0', { token: user.accessToken }), 400, 'validation', [
      'query.limit',
    ]);
  });
});

describe('monthly limit', () => {
  it('suspends every service when a charge would pass the limit; a new month (month-rollover) resumes them', async () => {
    const user = await newCustomer();
    await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 1000 } });
    expect(
      (await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: 15 } })).body,
    ).toMatchObject({ max_monthly_usd_cents: 15 });
    await useAndBill(user.id, 1000, 4);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body).toMatchObject({
      balance_usd_cents: 990,
      current_month_charged_usd_cents: 10,
    });

    await useAndBill(user.id, 1000, 5);
    await waitFor(async () => (await request('GET', '/api/v1/jobs', { token: user.accessToken })).status === 402, 5000);
    const refused = await request('GET', '/api/v1/jobs', { token: user.accessToken });
    expect(refused.body).toMatchObject({ reason: 'monthly_limit_exceeded' });
    const stillOver = await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: 12 } });
    expect(stillOver.body).toMatchObject({ suspended_reason: 'monthly_limit_exceeded', outstanding_usd_cents: 10, balance_usd_cents: 990 });

    // The month ends.
    await app.sql(`update escrow_accounts set current_month_start = current_month_start - interval '1 month' where id = $1`, [user.id]);
    const rollover = await runJob(monthRolloverJob, app, orm);
    expect(rollover.resumed).toEqual([user.id]);
    expect((await runJob(monthRolloverJob, app, orm)).resumed).toEqual([]);
    await waitFor(async () => (await request('GET', '/api/v1/jobs', { token: user.accessToken })).status === 200, 5000);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body).toMatchObject({
      current_month_charged_usd_cents: 0,
      last_month_charged_usd_cents: 10,
      suspended_reason: null,
    });

    await runJob(billingJob, app, orm);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body).toMatchObject({
      balance_usd_cents: 980,
      current_month_charged_usd_cents: 10,
      outstanding_usd_cents: 0,
    });
  });

  it('raising or removing the limit resumes a customer suspended for it', async () => {
    const user = await newCustomer();
    await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 1000 } });
    await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: 5 } });
    await useAndBill(user.id, 1000, 3);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body.suspended_reason).toBe(
      'monthly_limit_exceeded',
    );
    const lifted = await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: null } });
    expect(lifted.body).toMatchObject({ suspended_reason: null, max_monthly_usd_cents: null });
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
  });

  it('validates the limit: 400 for negative, fractional or unknown fields', async () => {
    const user = await newCustomer();
    for (const body of [{ max_monthly_usd_cents: -1 }, { max_monthly_usd_cents: 2.5 }, { max_monthly_usd_cents: 10, extra: true }, {}]) {
      expectProblem(await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body }), 400, 'validation');
    }
  });
});

describe('services', () => {
  it('lists every service type with the customer\u2019s tier, state, rate limit and prices', async () => {
    const user = await newCustomer();
    const response = await request('GET', '/api/v1/services', { token: user.accessToken });
    expect(response.status).toBe(200);
    expect(response.body.next_cursor).toBeNull();
    expect(response.body.items).toMatchObject([
      {
        service_type: 'compute',
        tier: 'starter',
        enabled: true,
        state: 'active',
        rate_limit_per_minute: 100,
        pricing: { request_micro_usd_cents: 10_000 },
      },
      { service_type: 'seal', tier: 'starter', enabled: false, state: 'disabled', updated_at: null },
    ]);
  });

  it('refuses enabling or upgrading with 402 and the figures of validateOperation; downgrading and disabling always pass', async () => {
    const user = await newCustomer();
    const poor = await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'pro', enabled: true } });
    expectProblem(poor, 402, 'payment-required');
    expect(poor.body).toMatchObject({
      reason: 'insufficient_balance',
      current_balance_usd_cents: 0,
      estimated_cost_usd_cents: 2000,
      required_deposit_usd_cents: 2000,
    });

    await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 2000 } });
    await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: 1000 } });
    const limited = await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'pro', enabled: true } });
    expectProblem(limited, 402, 'payment-required');
    expect(limited.body).toMatchObject({
      reason: 'monthly_limit_exceeded',
      max_monthly_usd_cents: 1000,
      current_month_charged_usd_cents: 0,
      estimated_cost_usd_cents: 2000,
      remaining_authorization_usd_cents: 1000,
    });

    await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: null } });
    const enabled = await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'pro', enabled: true } });
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ service_type: 'seal', tier: 'pro', enabled: true, state: 'active', rate_limit_per_minute: 1000 });

    // Without money, going down or off is still allowed; going up is not.
    await request('PATCH', '/api/v1/billing/limits', { token: user.accessToken, body: { max_monthly_usd_cents: 0 } });
    expect(
      (await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'starter', enabled: true } })).status,
    ).toBe(200);
    expectProblem(
      await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'enterprise', enabled: true } }),
      402,
      'payment-required',
    );
    expect(
      (await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'enterprise', enabled: false } })).body,
    ).toMatchObject({ state: 'disabled' });
  });

  it('a disabled service answers 402 until it is enabled again', async () => {
    const user = await newCustomer();
    expect(
      (await request('PUT', '/api/v1/services/compute', { token: user.accessToken, body: { tier: 'starter', enabled: false } })).status,
    ).toBe(200);
    const refused = await request('GET', '/api/v1/jobs', { token: user.accessToken });
    expectProblem(refused, 402, 'payment-required');
    expect(
      (await request('PUT', '/api/v1/services/compute', { token: user.accessToken, body: { tier: 'starter', enabled: true } })).status,
    ).toBe(200);
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
  });

  it('answers 404 for an unknown service type, 400 naming params.service_type for a malformed one, and 400 for a malformed body', async () => {
    const user = await newCustomer();
    expectProblem(
      await request('PUT', '/api/v1/services/teleport', { token: user.accessToken, body: { tier: 'pro', enabled: true } }),
      404,
      'not-found',
    );
    for (const serviceType of ['%00', 'a%00b', '%0A', 'seal%20', 'x'.repeat(65)]) {
      const malformed = await request('PUT', `/api/v1/services/${serviceType}`, {
        token: user.accessToken,
        body: { tier: 'pro', enabled: true },
      });
      expectProblem(malformed, 400, 'validation', ['params.service_type']);
      // Nothing of the raw value comes back: no control character in the detail or the field errors.
      const texts = [
        malformed.body.detail,
        ...malformed.body.errors.flatMap((e: { field: string; message: string }) => [e.field, e.message]),
      ];
      for (const text of texts) expect(text).not.toMatch(/\p{Cc}/u);
    }
    for (const body of [
      { tier: 'gold', enabled: true },
      { tier: 'pro' },
      { tier: 'pro', enabled: 'yes' },
      { tier: 'pro', enabled: true, region: 'eu' },
    ]) {
      expectProblem(await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body }), 400, 'validation');
    }
  });
});
