import { describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { HttpResponse } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { bulkCustomers, type Customer } from '../helpers/bulk-customers.js';

/**
 * Admission control within one API process while its cached counts are read again (queue/admission.ts): a
 * recount begun while admitted jobs were still being inserted, or that ran while more were admitted, must not
 * forget them. Steady waves of concurrent submits (each wave past half the counts' 1 s age, so a background
 * recount runs behind it) once left 22–26 queued rows under a cap of 20, and bulks 120 under a cap of 100.
 * No workers: every accepted job stays queued.
 */
const cap = 20;
const suite = useTestApp({ env: { TIER_MAX_QUEUED: `starter=${cap}` } });

const { newCustomer, bulk, submit, countJobs } = bulkCustomers(suite);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function expectRefused(response: HttpResponse): void {
  expectProblem(response, 429, 'too-many-jobs');
  expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(response.body).toMatchObject({ cap: 'queued', limit: cap });
}

/** Sends `waves` waves of `size` concurrent submits `gapMs` apart; after each, the queued rows are within the cap. */
async function waves(
  customer: Customer,
  options: { waves: number; size: number; gapMs: number; send: () => Promise<HttpResponse>; queued?: number },
) {
  const accepted: number[] = [];
  let total = options.queued ?? 0;
  for (let wave = 0; wave < options.waves; wave++) {
    const answers = await Promise.all(Array.from({ length: options.size }, options.send));
    for (const answer of answers) if (answer.status !== 202) expectRefused(answer);
    const ok = answers.filter((answer) => answer.status === 202);
    accepted.push(ok.length);
    total += ok.reduce((sum, answer) => sum + (answer.body.items?.length ?? 1), 0);
    const rows = await countJobs(customer);
    expect(rows, `queued rows after wave ${wave} (accepted per wave: ${accepted.join(' ')})`).toBeLessThanOrEqual(cap);
    expect(rows).toBe(total);
    await pause(options.gapMs);
  }
  return total;
}

describe('admission while the counts are read again', () => {
  it('never queues past the cap from waves of 6 concurrent POST /jobs 180 ms apart, and refuses the rest 429 with Retry-After', async () => {
    const customer = await newCustomer();
    const total = await waves(customer, { waves: 10, size: 6, gapMs: 180, send: () => submit(customer) });
    expect(total).toBeLessThanOrEqual(cap);
    // Counted twice at most until the next read: once the counts are read afresh, the cap is reached exactly.
    await pause(1100);
    await waves(customer, { waves: 2, size: 6, gapMs: 600, send: () => submit(customer), queued: total });
    expect(await countJobs(customer)).toBe(cap);
  }, 30_000);

  it('never queues past the cap from waves of 2 concurrent bulks of 4 jobs 200 ms apart', async () => {
    const customer = await newCustomer();
    const total = await waves(customer, { waves: 10, size: 2, gapMs: 200, send: () => bulk(customer, 4) });
    expect(total).toBeLessThanOrEqual(cap);
    await pause(1100);
    await waves(customer, { waves: 2, size: 2, gapMs: 600, send: () => bulk(customer, 4), queued: total });
    expect(await countJobs(customer)).toBe(cap);
  }, 30_000);
});
