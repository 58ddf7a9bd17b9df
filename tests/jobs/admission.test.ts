import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';
import { bulkCustomers, type Customer } from '../helpers/bulk-customers.js';
import { createAdmission } from '../../queue/admission.js';

/**
 * Admission control (issue 16): small caps so a test reaches them. No workers: submitted jobs stay queued.
 * (The per-minute budget on bulk submits: bulk-rate-limit.test.ts.)
 */
const suite = useTestApp({ env: { TIER_MAX_QUEUED: 'starter=20', TIER_MAX_ACTIVE: 'starter=3' } });

const { newCustomer, bulk, submit, countJobs } = bulkCustomers(suite);

let other: Customer;
beforeAll(async () => {
  other = await newCustomer();
});

describe('admission control', () => {
  it("answers 429 with Retry-After past the queued cap, naming the cap and the count, while another customer's submit succeeds", async () => {
    const flooder = await newCustomer();
    expect((await bulk(flooder, 20)).status).toBe(202);
    const refused = await submit(flooder);
    expectProblem(refused, 429, 'too-many-jobs');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body).toMatchObject({ cap: 'queued', limit: 20, count: 20, tier: 'starter' });
    expect(refused.body.detail).toMatch(/TIER_MAX_QUEUED/);
    expectProblem(await bulk(flooder, 1), 429, 'too-many-jobs');
    expect(await countJobs(flooder)).toBe(20);
    expect((await submit(other)).status).toBe(202);
  });

  it('counts every job of a bulk: a bulk that would pass the queued cap is refused whole, a smaller one fits', async () => {
    const customer = await newCustomer();
    expect((await bulk(customer, 12)).status).toBe(202);
    const refused = await bulk(customer, 9);
    expectProblem(refused, 429, 'too-many-jobs');
    expect(refused.body).toMatchObject({ cap: 'queued', limit: 20, count: 12, requested: 9 });
    expect(await countJobs(customer)).toBe(12);
    expect((await bulk(customer, 8)).status).toBe(202);
    expect(await countJobs(customer)).toBe(20);
  });

  it('answers 429 while the customer has its cap of running jobs', async () => {
    const customer = await newCustomer();
    for (let i = 0; i < 3; i++) {
      await suite.app.sql(
        `insert into jobs (id, customer_id, type, state, payload, started_at) values ($1, $2, 'invoke', 'active', '{}', now())`,
        [randomUUID(), customer.id],
      );
    }
    const refused = await submit(customer);
    expectProblem(refused, 429, 'too-many-jobs');
    expect(refused.body).toMatchObject({ cap: 'active', limit: 3, count: 3 });
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await submit(other)).status).toBe(202);
  });

  it('holds only the counts of customers counted within maxAgeMs: each miss drops the stale ones, oldest first', async () => {
    const clock = { now: Date.now() };
    const admission = createAdmission(suite.app.deps.orm.em, suite.app.config, { maxAgeMs: 1000, now: () => clock.now });
    const customers = Array.from({ length: 200 }, () => randomUUID());
    for (const customer of customers) expect(await admission.admit(customer, 'starter')).toBeNull();
    expect(admission.size).toBe(200);
    // Still fresh: another customer's miss keeps them all.
    clock.now += 1000;
    expect(await admission.admit(randomUUID(), 'starter')).toBeNull();
    expect(admission.size).toBe(201);
    // Past their age: the next miss drops the 200, keeping the one counted since and itself.
    clock.now += 1;
    const [first, second] = [randomUUID(), randomUUID()];
    expect(await admission.admit(first, 'starter')).toBeNull();
    expect(admission.size).toBe(2);
    // Counts read again in the background move their customer behind the others: `second`, counted after
    // `first` but not since, goes on the next miss while `first` stays.
    clock.now += 100;
    expect(await admission.admit(second, 'starter')).toBeNull();
    clock.now += 500;
    expect(await admission.admit(first, 'starter')).toBeNull(); // past half its age: read again behind this answer
    await new Promise((resolve) => setTimeout(resolve, 300));
    clock.now += 550;
    const newcomer = randomUUID();
    expect(await admission.admit(newcomer, 'starter')).toBeNull();
    expect(admission.size).toBe(2); // `first` (read again 550 ms ago) and the newcomer; `second` (1,050 ms) went
    // Bad input: a customer refused by its cap is held like any other, and goes the same way.
    const refused = await admission.admit(randomUUID(), 'starter', 1_000_000);
    expect(refused).toMatchObject({ cap: 'queued', requested: 1_000_000 });
    expect(admission.size).toBe(3);
    clock.now += 1001;
    expect(await admission.admit(randomUUID(), 'starter')).toBeNull();
    expect(admission.size).toBe(1);
  });

  it("reads a customer's counts again in the background before they expire: the submits after it see the new count", async () => {
    const customer = await newCustomer();
    const admission = createAdmission(suite.app.deps.orm.em, suite.app.config, { maxAgeMs: 2000 });
    expect(await admission.admit(customer.id, 'starter')).toBeNull();
    // Jobs another API process queued meanwhile.
    for (let i = 0; i < 15; i++) {
      await suite.app.sql(`insert into jobs (id, customer_id, type, state, payload) values ($1, $2, 'invoke', 'queued', '{}')`, [
        randomUUID(),
        customer.id,
      ]);
    }
    // Past half the counts' age: answered from the counts held (1 queued), which are read again behind it.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await admission.admit(customer.id, 'starter')).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Well before the old counts' 2 s are up, the new ones are in use: 15 queued + 6 would pass the cap of 20.
    expect(await admission.admit(customer.id, 'starter', 6)).toMatchObject({ cap: 'queued', count: 15 });
  });
});

describe('who holds the backlog', () => {
  it('GET /admin/backlog names the customers with the most unfinished jobs and their caps, for admins only', async () => {
    const big = await newCustomer();
    expect((await bulk(big, 19)).status).toBe(202);
    const admin = await loginAdmin(suite.request);
    const view = await suite.request('GET', '/api/v1/admin/backlog?limit=100', { token: admin });
    expect(view.status, view.text).toBe(200);
    expect(view.body.items.find((item: { customer_id: string }) => item.customer_id === big.id)).toEqual(
      expect.objectContaining({ tier: 'starter', queued: 19, delayed: 0, active: 0, max_queued: 20, max_active: 3 }),
    );
    const sizes = view.body.items.map(
      (item: { queued: number; delayed: number; active: number }) => item.queued + item.delayed + item.active,
    );
    expect(sizes).toEqual([...sizes].sort((x: number, y: number) => y - x));
    const top = await suite.request('GET', '/api/v1/admin/backlog?limit=1', { token: admin });
    expect(top.body.items).toHaveLength(1);
    expect(top.body.other.customers).toBe(view.body.items.length - 1);
    expect(top.body.total).toEqual(view.body.total);
    expectProblem(await suite.request('GET', '/api/v1/admin/backlog', { token: big.user.accessToken }), 403, 'forbidden');
    expectProblem(await suite.request('GET', '/api/v1/admin/backlog?limit=0', { token: admin }), 400, 'validation', ['query.limit']);
  });

  it('exports per-customer queued and active gauges for at most 10 customers plus "other"', async () => {
    const metrics = await suite.request('GET', '/api/v1/metrics', { token: suite.app.config.metricsToken });
    const lines = metrics.text.split('\n').filter((line) => line.startsWith('chrysalis_customer_jobs{'));
    const customers = new Set(lines.map((line) => /customer="([^"]+)"/.exec(line)?.[1]));
    expect(customers.has('other')).toBe(true);
    expect(customers.size).toBeLessThanOrEqual(11);
    expect(lines.some((line) => /state="queued"/.test(line) && / [1-9]\d*$/.test(line))).toBe(true);
    expect(lines.some((line) => line.includes('state="active"'))).toBe(true);
  });
});
