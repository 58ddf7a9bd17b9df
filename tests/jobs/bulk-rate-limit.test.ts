import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { useTestApp } from '../helpers/suite.js';
import { bulkCustomers, type Customer } from '../helpers/bulk-customers.js';

/**
 * The per-minute budget on bulk submits (SPEC §9: each job of a bulk counts as one request). Starter
 * writes: 100 × 0.3 = 30 per minute. No workers: submitted jobs stay queued.
 */
const suite = useTestApp({ env: { RATE_LIMIT_MULTIPLIER: '0.3' } });

const { newCustomer, bulk, submit, countJobs } = bulkCustomers(suite);

let other: Customer;
beforeAll(async () => {
  other = await newCustomer();
});

describe('the per-minute budget on bulk submits', () => {
  it("counts each job as one request: a bulk past the budget is 429 and costs one request, while another customer's submit succeeds", async () => {
    const customer = await newCustomer(); // creating the substrate took 1 of 30
    const first = await bulk(customer, 10);
    expect(first.status).toBe(202);
    expect(first.headers.get('ratelimit-remaining')).toBe('19');
    const refused = await bulk(customer, 25);
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await countJobs(customer)).toBe(10);
    expect((await submit(other)).status).toBe(202);
    // The refused bulk cost one request, not 25: 18 are left, so a bulk of 18 fits exactly.
    const fits = await bulk(customer, 18);
    expect(fits.status, fits.text).toBe(202);
    expect(fits.headers.get('ratelimit-remaining')).toBe('0');
    expectProblem(await submit(customer), 429, 'rate-limited');
  });
});
