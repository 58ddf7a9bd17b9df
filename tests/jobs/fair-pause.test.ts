import { bundleOutcomesField, isBundleData, type BundleOutcomes } from '../../queue/bundles.js';
import { afterEach, describe, expect, it } from 'vitest';
import { getJobDefinition } from '../../jobs/registry.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { fairShareKey } from '../../queue/fair-share/fair-share.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('fair sharing: a paused customer', () => {
  it("leaves the shards' windows while paused (B's jobs still run), and after resume runs each job once", async () => {
    // Jobs held one by one (a bundle is held whole: fair-bundles.test.ts).
    app = await startTestApp({
      SWEEPER_INTERVAL_MS: '3600000',
      FAIR_SHARING: 'true',
      FINISHED_JOB_TRIM_INTERVAL_MS: '0',
      JOB_BUNDLE_SIZE: '1',
    });
    const request = httpClient(app.baseUrl);
    const [a, b] = [await registerUser(request), await registerUser(request)];
    const customerOf = async (token: string) => (await request('GET', '/api/v1/auth/me', { token })).body.customer_id as string;
    const [aCustomer, bCustomer] = [await customerOf(a.accessToken), await customerOf(b.accessToken)];
    const [aSubstrate, bSubstrate] = [
      await createExpressionSubstrate(request, a.accessToken, 'x * 2'),
      await createExpressionSubstrate(request, b.accessToken, 'x + 1'),
    ];
    const deps = app.deps;
    const submit = (customerId: string, substrate: string, count: number) =>
      submitJobsBulk(
        { em: deps.orm.em, queues: deps.queues, fair: deps.fair, logger: deps.logger, cache: deps.cache },
        customerId,
        getJobDefinition('invoke')!,
        Array.from({ length: count }, (_, x) => ({ substrate_id: substrate, parameters: { x } })),
      );
    // Some of A's jobs are released before the pause (workers set them aside); the rest, and those A submits
    // while paused, are held in A's lanes.
    const aBefore = await submit(aCustomer, aSubstrate, 100);
    const inBullMq = async (id: string) => (await deps.queues.forJob('invoke', id).getJob(id)) !== undefined;
    const releasedBefore = new Set<string>();
    for (const id of aBefore) if (await inBullMq(id)) releasedBefore.add(id);
    expect(releasedBefore.size).toBeGreaterThan(0);
    const adminToken = await loginAdmin(request);
    const paused = await request('POST', `/api/v1/admin/customers/${aCustomer}/pause`, { token: adminToken });
    expect(paused.status, paused.text).toBe(200);
    const aIds = [...aBefore, ...(await submit(aCustomer, aSubstrate, 500))];
    const running = await app.startWorkers();
    const completions = new Map<string, number>();
    const counting: Array<Promise<void>> = [];
    for (const worker of running.workers) {
      worker.on('completed', (job) => {
        // A bundle (queue/bundles.ts) completes once for the members it ran: its hash has their outcomes (no trim
        // here removes it meanwhile).
        const data = job.data;
        const ran = isBundleData(data)
          ? deps.redis
              .hget(`${job.queueQualifiedName}:${job.id as string}`, bundleOutcomesField)
              .then((stored) => Object.entries(JSON.parse(stored ?? '{}') as BundleOutcomes).filter(([, outcome]) => 'r' in outcome))
              .then((outcomes) => outcomes.map(([id]) => id))
          : Promise.resolve([job.id as string]);
        counting.push(
          ran.then((ids) => {
            for (const id of ids) completions.set(id, (completions.get(id) ?? 0) + 1);
          }),
        );
      });
    }
    const bIds = await submit(bCustomer, bSubstrate, 40);

    const stateCount = async (customerId: string, state: string) =>
      Number(
        (await app!.sql<{ n: string }>(`select count(*) as n from jobs where customer_id = $1 and state = $2`, [customerId, state]))[0]!.n,
      );
    await waitFor(async () => (await stateCount(bCustomer, 'completed')) === bIds.length, 60_000, 100);

    // A's jobs are all set aside, and none of them counts in any shard's window any more.
    const shardKeys = [...deps.fair!.queues.keys()];
    const aInFlight = async () => {
      let total = 0;
      for (const key of shardKeys) total += Number((await deps.redis.hget(fairShareKey(key, 'count'), aCustomer)) ?? 0);
      return total;
    };
    await waitFor(async () => (await aInFlight()) === 0, 30_000, 100);
    expect(await stateCount(aCustomer, 'completed')).toBe(0);
    // The shards release none of a paused customer's held jobs (they would only be set aside).
    const releasedWhilePaused = [];
    for (const id of aIds) if (!releasedBefore.has(id) && (await inBullMq(id))) releasedWhilePaused.push(id);
    expect(releasedWhilePaused).toEqual([]);

    const resumed = await request('POST', `/api/v1/admin/customers/${aCustomer}/resume`, { token: adminToken });
    expect(resumed.status, resumed.text).toBe(200);
    await waitFor(async () => (await stateCount(aCustomer, 'completed')) === aIds.length, 120_000, 200);
    const rows = await app.sql<{ id: string; attempts_made: number }>(`select id, attempts_made from jobs where customer_id = $1`, [
      aCustomer,
    ]);
    expect(rows.filter((row) => row.attempts_made === 1)).toHaveLength(aIds.length);
    await Promise.all(counting);
    expect(
      aIds.filter((id) => completions.get(id) !== 1),
      'jobs of A not completed exactly once',
    ).toEqual([]);
    await waitFor(async () => (await aInFlight()) === 0, 10_000, 100);
  }, 240_000);
});
