import { afterEach, describe, expect, it } from 'vitest';
import { getJobDefinition } from '../../jobs/registry.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { obliterateType } from '../helpers/queues.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { bulkBacklog, heldIds } from '../helpers/fair-lanes.js';

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

const backlog = 2000;

/**
 * Customer A (enterprise) submits a backlog of invokes in bulk, then customer B (starter) submits one;
 * workers start after both. Returns how many of A's jobs finished before B's did (an order, not a time).
 */
async function aJobsFinishedBeforeB(env: Record<string, string>): Promise<number> {
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', ...env });
  const request = httpClient(app.baseUrl);
  const [a, b] = [await registerUser(request), await registerUser(request)];
  const aCustomer = (await request('GET', '/api/v1/auth/me', { token: a.accessToken })).body.customer_id as string;
  await app.sql(`update service_instances set tier = 'enterprise' where customer_id = $1`, [aCustomer]);
  const aSubstrate = await createExpressionSubstrate(request, a.accessToken, 'x * 2');
  const bSubstrate = await createExpressionSubstrate(request, b.accessToken, 'x + 1');

  const deps = app.deps;
  await submitJobsBulk(
    { em: deps.orm.em, queues: deps.queues, fair: deps.fair, logger: deps.logger, cache: deps.cache },
    aCustomer,
    getJobDefinition('invoke')!,
    Array.from({ length: backlog }, (_, x) => ({ substrate_id: aSubstrate, parameters: { x } })),
    deps.fair?.weightOf('enterprise') ?? 1,
  );
  const submitted = await request('POST', `/api/v1/substrates/${bSubstrate}/invoke`, {
    token: b.accessToken,
    body: { parameters: { x: 1 } },
  });
  expect(submitted.status).toBe(202);
  const bJob = submitted.body.id as string;
  // Its admission and add follow the 202 (queue/pending-enqueues.ts): B's job is in its shard before the workers start.
  await app.deps.pendingEnqueues.settled(bJob);

  await app.startWorkers();
  for (let waited = 0; ; waited++) {
    const [row] = await app.sql<{ n: string }>(`select count(*) as n from jobs where state in ('completed', 'failed')`);
    if (Number(row!.n) >= backlog + 1) break;
    if (waited > 3000) throw new Error(`only ${row!.n} of ${backlog + 1} jobs finished`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const [failed] = await app.sql<{ n: string }>(`select count(*) as n from jobs where state <> 'completed'`);
  expect(Number(failed!.n)).toBe(0);
  const [before] = await app.sql<{ n: string }>(
    `select count(*) as n from jobs where customer_id = $1 and finished_at < (select finished_at from jobs where id = $2)`,
    [aCustomer, bJob],
  );
  return Number(before!.n);
}

describe('fair sharing: a small customer behind a large backlog', () => {
  it("B's one job finishes before most of A's 2,000 with fair sharing", async () => {
    expect(await aJobsFinishedBeforeB({ FAIR_SHARING: 'true' })).toBeLessThan(500);
  }, 300_000);

  it('and after most of them with FAIR_SHARING=false (plain FIFO)', async () => {
    expect(await aJobsFinishedBeforeB({ FAIR_SHARING: 'false' })).toBeGreaterThan(500);
  }, 300_000);
});

describe('fair sharing: held jobs', () => {
  it('cancels a held job out of its lane, and after Redis loses everything re-lanes and runs every unfinished row', async () => {
    // Jobs held one by one (a bundle is held whole: fair-bundles.test.ts).
    app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FAIR_SHARING: 'true', JOB_BUNDLE_SIZE: '1' });
    const { request, token, customerId: aCustomer, substrate, ids } = await bulkBacklog(app, 400);
    const deps = app.deps;
    // No workers yet: a few per shard are released, the rest wait in A's lanes, not in BullMQ.
    const heldNow = async () => {
      const held = new Set<string>();
      for (const queue of deps.queues.ofType('invoke'))
        for (const id of await heldIds(deps.redis, queue.qualifiedName, aCustomer)) held.add(id);
      return held;
    };
    const heldBefore = await heldNow();
    const held = ids.filter((id) => heldBefore.has(id));
    expect(held.length).toBeGreaterThan(200);
    const target = held.at(-1)!;
    expect(await deps.queues.forJob('invoke', target).getJob(target)).toBeUndefined();

    const cancelled = await request('DELETE', `/api/v1/jobs/${target}`, { token });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');
    expect((await heldNow()).has(target)).toBe(false);
    const again = await request('DELETE', `/api/v1/jobs/${target}`, { token });
    expect(again.status).toBe(409);

    // Redis restarts empty: every unfinished row goes back into its lane, and runs once.
    await obliterateType(deps.queues, 'invoke');
    await app.sql(`update jobs set created_at = created_at - interval '1 minute' where customer_id = $1`, [aCustomer]);
    const running = await app.startWorkers();
    expect((await running.sweeper.sweep()).reenqueued).toBe(ids.length - 1);
    const rows = await waitFor(
      async () => {
        const found = await app!.sql<{ id: string; state: string; attempts_made: number }>(
          `select id, state, attempts_made from jobs where customer_id = $1`,
          [aCustomer],
        );
        return found.every((row) => row.state === 'completed' || row.id === target) ? found : null;
      },
      120_000,
      200,
    );
    expect(rows.find((row) => row.id === target)?.state).toBe('cancelled');
    expect(rows.filter((row) => row.state === 'completed' && row.attempts_made === 1)).toHaveLength(ids.length - 1);

    // A delayed job waits in its shard's fair `delayed` set (a delay cannot bypass fair sharing), not in BullMQ.
    const delayed = await request('POST', '/api/v1/jobs', {
      token,
      body: { type: 'invoke', payload: { substrate_id: substrate, parameters: { x: 1 } }, delay_ms: 60_000 },
    });
    expect(delayed.status).toBe(202);
    expect(delayed.body.state).toBe('delayed');
    // Its admission to the fair `delayed` set follows the 202 (queue/pending-enqueues.ts): read Redis once it is in.
    await deps.pendingEnqueues.settled(delayed.body.id);
    const delayedQueue = deps.queues.forJob('invoke', delayed.body.id);
    expect(await deps.redis.zscore(`${delayedQueue.qualifiedName}:fair:delayed`, delayed.body.id)).not.toBeNull();
    expect(await delayedQueue.getJob(delayed.body.id)).toBeUndefined();

    // An administrator's cancel takes it out of the `delayed` set too (A's other jobs are all finished by now).
    const adminToken = await loginAdmin(request);
    const adminCancel = await request('POST', '/api/v1/admin/jobs/cancel', { token: adminToken, body: { customer_id: aCustomer } });
    expect(adminCancel.body).toMatchObject({ cancelled: 1, job_ids: [delayed.body.id] });
    expect(await deps.redis.zscore(`${delayedQueue.qualifiedName}:fair:delayed`, delayed.body.id)).toBeNull();
  }, 300_000);
});
