import { afterEach, describe, expect, it } from 'vitest';
import { registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

const backlog = 4000;
const perRequest = 1000;
const bJobs = 3;

interface Order {
  /** A's jobs unfinished when B submitted (the backlog B arrived behind). */
  aUnfinishedAtB: number;
  /**
   * Per job of B: of A's jobs unfinished when it was accepted, the share that finished before it did. Each job
   * for itself: B's submits are sequential HTTP calls, and on 2 busy cores each took ~100 ms, long enough for a
   * fast drain to run a good part of A's backlog between them.
   */
  aShareAheadOfB: number[];
  /** A's jobs that travelled in bundles (queue/bundles.ts). */
  aBundled: number;
}

/**
 * With workers running, customer A (enterprise) bulk-submits a backlog through `POST /jobs/bulk`; then
 * customer B (starter) submits a few invokes. Returns where B's jobs finished within A's backlog: an order
 * (row counts compared by `finished_at`), not a time.
 */
async function whereBFinished(env: Record<string, string>): Promise<Order> {
  // Bundles of 10, not 50: a job of B finishes while the bundles running beside it still have members to run, and
  // 16 shards' worth of running bundles of 50 (FIFO: up to 3,200 jobs) made the order a matter of timing.
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', JOB_BUNDLE_SIZE: '10', ...env });
  const request = httpClient(app.baseUrl);
  const [a, b] = [await registerUser(request), await registerUser(request)];
  const aCustomer = (await request('GET', '/api/v1/auth/me', { token: a.accessToken })).body.customer_id as string;
  await app.sql(`update service_instances set tier = 'enterprise' where customer_id = $1`, [aCustomer]);
  // An API key made after the upgrade carries the enterprise tier (the login token keeps the tier it was issued with).
  const aKey = (await request('POST', '/api/v1/api-keys', { token: a.accessToken, body: { name: 'bulk', service_type: 'compute' } })).body
    .key as string;
  const aSubstrate = await createExpressionSubstrate(request, aKey, 'x * 2');
  const bSubstrate = await createExpressionSubstrate(request, b.accessToken, 'x + 1');
  await app.startWorkers();

  const submitA = async (requests: number, y: number) => {
    const responses = await Promise.all(
      Array.from({ length: requests }, (_, r) =>
        request('POST', '/api/v1/jobs/bulk', {
          token: aKey,
          body: {
            jobs: Array.from({ length: perRequest }, (_, i) => ({
              type: 'invoke',
              payload: { substrate_id: aSubstrate, parameters: { x: r * perRequest + i, y } },
            })),
          },
        }),
      ),
    );
    for (const response of responses) expect([response.status, response.body]).toEqual([202, expect.anything()]);
  };
  // A first runs one bulk to its end, so the shards know what A's jobs cost (cheap ones: a window of
  // estimated work then holds many of them) before the backlog B arrives behind.
  await submitA(1, 0);
  await waitFor(
    async () => {
      const [row] = await app!.sql<{ n: string }>(`select count(*) as n from jobs where state in ('completed', 'failed')`);
      return Number(row!.n) >= perRequest;
    },
    120_000,
    100,
  );
  await submitA(backlog / perRequest, 1);

  const [unfinished] = await app.sql<{ n: string }>(
    `select count(*) as n from jobs where customer_id = $1 and state not in ('completed', 'failed')`,
    [aCustomer],
  );
  const bIds: string[] = [];
  for (let x = 0; x < bJobs; x++) {
    const submitted = await request('POST', `/api/v1/substrates/${bSubstrate}/invoke`, {
      token: b.accessToken,
      body: { parameters: { x } },
    });
    expect(submitted.status).toBe(202);
    bIds.push(submitted.body.id as string);
  }

  await waitFor(
    async () => {
      const [row] = await app!.sql<{ n: string }>(`select count(*) as n from jobs where state in ('completed', 'failed')`);
      return Number(row!.n) >= perRequest + backlog + bJobs;
    },
    240_000,
    100,
  );
  const [failed] = await app.sql<{ n: string }>(`select count(*) as n from jobs where state <> 'completed'`);
  expect(Number(failed!.n)).toBe(0);
  // The invocation cache answered none of them: every one ran.
  const [cached] = await app.sql<{ n: string }>(`select count(*) as n from jobs where (result->>'cached')::boolean`);
  expect(Number(cached!.n)).toBe(0);
  const ahead = await app.sql<{ unfinished: string; ahead: string }>(
    `select (select count(*) from jobs a where a.customer_id = $2 and not (a.finished_at < b.created_at)) as unfinished,
            (select count(*) from jobs a where a.customer_id = $2 and a.finished_at >= b.created_at and a.finished_at < b.finished_at) as ahead
       from jobs b where b.id = any($1::uuid[])`,
    [bIds, aCustomer],
  );
  const [bundled] = await app.sql<{ n: string }>(`select count(*) as n from jobs where customer_id = $1 and bundle_id is not null`, [
    aCustomer,
  ]);
  return {
    aUnfinishedAtB: Number(unfinished!.n),
    aShareAheadOfB: ahead.map((row) => Number(row.ahead) / Number(row.unfinished)),
    aBundled: Number(bundled!.n),
  };
}

describe('fair sharing: a small customer submits behind a bulk-submitted backlog', () => {
  it("B's jobs finish while most of A's 4,000 are still to run (FAIR_SHARING=true)", async () => {
    const order = await whereBFinished({ FAIR_SHARING: 'true' });
    // The backlog was there when B arrived (else the order says nothing).
    expect(order.aUnfinishedAtB).toBeGreaterThan(backlog / 2);
    // Each of B's jobs went ahead of most of what remained of A's backlog (FIFO: behind ~all of it).
    expect(order.aShareAheadOfB).toHaveLength(bJobs);
    for (const share of order.aShareAheadOfB) expect(share).toBeLessThan(0.5);
    // Releases carried A's jobs in bundles, B's single submits alone (they are not bundled).
    expect(order.aBundled).toBeGreaterThan(backlog / 2);
  }, 300_000);

  it("and behind A's backlog without fair sharing (FIFO: the order above is fair sharing's doing)", async () => {
    const order = await whereBFinished({ FAIR_SHARING: 'false' });
    expect(order.aUnfinishedAtB).toBeGreaterThan(backlog / 2);
    for (const share of order.aShareAheadOfB) expect(share).toBeGreaterThan(0.75);
    // Every job of a bulk travels in a bundle but one left alone on its queue (a run of 61 on one shard: 6 × 10 + 1).
    expect(order.aBundled).toBeGreaterThan((perRequest + backlog) * 0.95);
  }, 300_000);
});
