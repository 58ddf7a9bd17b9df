import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * Deposits come from money (issue 13, item 7). With NODE_ENV=production and no confirming escrow adapter
 * configured (ESCROW_DEPOSITS defaults to `none` there), no customer can raise their own balance; money gets
 * in through an admin's credit, which the ledger records with who gave it and why.
 */
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let adminToken: string;

beforeAll(async () => {
  // Production refuses to generate secrets: they are set explicitly, as a deployment must.
  app = await startTestApp({
    NODE_ENV: 'production',
    JWT_SECRET: randomBytes(32).toString('hex'),
    METRICS_TOKEN: randomBytes(24).toString('hex'),
    VAULT_KEY: randomBytes(32).toString('hex'),
  });
  request = httpClient(app.baseUrl);
  adminToken = await loginAdmin(request);
});

afterAll(async () => {
  await app?.close();
});

async function newCustomer() {
  const user = await registerUser(request);
  const me = await request('GET', '/api/v1/auth/me', { token: user.accessToken });
  return { ...user, id: me.body.customer_id as string };
}

describe('deposits in production without a confirming escrow adapter', () => {
  it('answers 403 problem+json to every deposit, so a customer cannot raise their own balance or buy a tier with it', async () => {
    expect(app.config.nodeEnv).toBe('production');
    const user = await newCustomer();
    const refused = await request('POST', '/api/v1/billing/deposits', { token: user.accessToken, body: { amount_usd_cents: 100_000 } });
    expectProblem(refused, 403, 'forbidden');
    expect(refused.body.detail).toMatch(/ESCROW_DEPOSITS/);
    const retried = await request('POST', '/api/v1/billing/deposits', {
      token: user.accessToken,
      headers: { 'idempotency-key': 'wallet-tx-9' },
      body: { amount_usd_cents: 1 },
    });
    expectProblem(retried, 403, 'forbidden');

    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body.balance_usd_cents).toBe(0);
    expect((await request('GET', '/api/v1/billing/transactions', { token: user.accessToken })).body.items).toEqual([]);
    expect(await app.sql('select id from escrow_transactions where customer_id = $1', [user.id])).toEqual([]);
    const upgrade = await request('PUT', '/api/v1/services/compute', {
      token: user.accessToken,
      body: { tier: 'enterprise', enabled: true },
    });
    expectProblem(upgrade, 402, 'payment-required');
    expect(upgrade.body.reason).toBe('insufficient_balance');
  });

  it('lets an admin credit a customer: the ledger names the admin and the reason, and the customer sees the credit and its balance', async () => {
    const user = await newCustomer();
    const admin = await request('GET', '/api/v1/auth/me', { token: adminToken });
    const reason = 'Welcome credit, support ticket 4711';
    const credited = await request('POST', `/api/v1/admin/customers/${user.id}/credits`, {
      token: adminToken,
      body: { amount_usd_cents: 2500, reason },
    });
    expect(credited.status, credited.text).toBe(201);
    expect(credited.body).toMatchObject({
      customer_id: user.id,
      credited_by: admin.body.id,
      balance_usd_cents: 2500,
      transaction: { type: 'credit', amount_usd_cents: 2500, reason },
    });

    const [row] = await app.sql(
      'select tx_type, amount_usd_cents::int as amount, created_by, reason from escrow_transactions where customer_id = $1',
      [user.id],
    );
    expect(row).toEqual({ tx_type: 'credit', amount: 2500, created_by: admin.body.id, reason });

    const transactions = await request('GET', '/api/v1/billing/transactions', { token: user.accessToken });
    expect(transactions.body.items).toEqual([
      {
        id: credited.body.transaction.id,
        type: 'credit',
        amount_usd_cents: 2500,
        reason,
        tx_digest: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        created_at: expect.any(String),
      },
    ]);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).body.balance_usd_cents).toBe(2500);
    const upgrade = await request('PUT', '/api/v1/services/seal', { token: user.accessToken, body: { tier: 'pro', enabled: true } });
    expect(upgrade.status, upgrade.text).toBe(200);
  });
});
