import { Cluster } from 'ioredis';
import { placeName } from '../../api/concurrency-limits.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startLocalRedisCluster, type LocalRedisCluster } from '../helpers/redis-cluster.js';
import { openSse } from '../helpers/sse.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver } from '../webhooks/receiver.js';

/**
 * Chrysalis on a Redis Cluster (SPEC §9): a local 3-master cluster of this file's own, the API and
 * in-process workers with REDIS_CLUSTER_NODES set and 16 queue shards, driven through the HTTP contract.
 */
let cluster: LocalRedisCluster;
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let receiver: Receiver;
let alice: TestUser;
let substrateId: string;

beforeAll(async () => {
  cluster = await startLocalRedisCluster(3);
  receiver = await Receiver.start();
  app = await startTestApp({
    REDIS_CLUSTER_NODES: cluster.nodes,
    QUEUE_SHARDS: '16',
    READY_REQUIRES_WORKER: 'true',
    RATE_LIMIT_LOGIN_PER_MIN: '4',
    // The sweeper's pipelines (one per queue, so one slot each) run every half second.
    SWEEPER_INTERVAL_MS: '500',
    // FIFO: the sweeper test looks for re-enqueued jobs in BullMQ under their ids (fair sharing re-lanes them).
    FAIR_SHARING: 'false',
  });
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  substrateId = await createExpressionSubstrate(request, alice.accessToken, 'x * y');
}, 120_000);

afterAll(async () => {
  await app?.close();
  await receiver?.close();
  await cluster?.stop();
});

const job = async (id: string) => (await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken })).body;
const finished = (id: string) => waitFor(async () => ((await job(id)).state === 'completed' ? job(id) : null), 30_000, 100);

describe('Chrysalis on a 3-master Redis Cluster', () => {
  it('connects with cluster clients and spreads the 16 invoke shards over all 3 masters', async () => {
    expect(app.deps.redis).toBeInstanceOf(Cluster);
    const shards = app.deps.queues.ofType('invoke');
    expect(shards).toHaveLength(16);
    const masters = await Promise.all(
      shards.map(async (queue) => cluster.masterOfSlot(await cluster.keySlot(`${app.config.queuePrefix}:${queue.name}:wait`))),
    );
    expect(new Set(masters)).toEqual(new Set(cluster.ports));
  });

  it('answers /ready 200 once a worker has beaten', async () => {
    await waitFor(async () => (await request('GET', '/api/v1/ready')).status === 200, 20_000, 200);
  });

  it('runs an invoke with Prefer: wait and answers 200 with the result', async () => {
    const answered = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=20' },
      body: { parameters: { x: 6, y: 7 } },
    });
    expect(answered.status, answered.text).toBe(200);
    expect(answered.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('refuses an invoke with a bad body with 400 naming the field, on a cluster as on one node', async () => {
    const refused = await request('POST', '/api/v1/jobs', { token: alice.accessToken, body: { type: 'invoke', payload: {} } });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.status).toBeLessThan(500);
    expect(refused.text).toContain('substrate_id');
  });

  it('runs a batch whose invocations land on many shards', async () => {
    const invocations = Array.from({ length: 40 }, (_, x) => ({ substrate_id: substrateId, parameters: { x, y: 2 } }));
    const submitted = await request('POST', '/api/v1/batches', { token: alice.accessToken, body: { invocations } });
    expect(submitted.status, submitted.text).toBe(202);
    expect((await finished(submitted.body.id)).state).toBe('completed');
  });

  it("delivers a job's completion to its webhook_url", async () => {
    const submitted = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 2, y: 5 } }, webhook_url: receiver.url('/done') },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const [delivery] = await waitFor(async () => (receiver.at('/done').length > 0 ? receiver.at('/done') : null), 30_000, 100);
    expect(JSON.parse(delivery!.body)).toMatchObject({ data: { job: { id: submitted.body.id, state: 'completed' } } });
  });

  it("runs a schedule's first run (scheduler on its tick queue, job on an invoke shard)", async () => {
    const created = await request('POST', '/api/v1/schedules', {
      token: alice.accessToken,
      body: {
        name: 'hourly',
        every_ms: 3_600_000,
        job: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } } },
      },
    });
    expect(created.status, created.text).toBe(201);
    const run = await waitFor(
      async () => {
        const page = await request('GET', '/api/v1/jobs?schedule=hourly&state=completed', { token: alice.accessToken });
        return page.body.items?.[0] ?? null;
      },
      30_000,
      200,
    );
    expect(run).toMatchObject({ type: 'invoke', state: 'completed' });
  });

  it('streams a job’s events over SSE (QueueEvents on its shard) until it finishes', async () => {
    const submitted = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 3, y: 3 } }, delay_ms: 1500 },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const stream = await openSse(`${app.baseUrl}/api/v1/jobs/${submitted.body.id}/events`, { token: alice.accessToken });
    expect(stream.status).toBe(200);
    const events = await stream.rest(30_000);
    expect(events.at(-1)).toMatchObject({ id: 'final', data: { id: submitted.body.id, state: 'completed' } });
  });

  it('cancels a delayed job', async () => {
    const submitted = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 2 } }, delay_ms: 3_600_000 },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const cancelled = await request('DELETE', `/api/v1/jobs/${submitted.body.id}`, { token: alice.accessToken });
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');
    expect(await app.deps.queues.forJob('invoke', submitted.body.id).getJob(submitted.body.id)).toBeUndefined();
  });

  it('answers 429 past the login rate limit (counted in the cluster)', async () => {
    let status = 0;
    for (let attempt = 0; attempt < 10 && status !== 429; attempt++) {
      status = (await request('POST', '/api/v1/auth/login', { body: { email: alice.email, password: 'wrong password here' } })).status;
    }
    expect(status).toBe(429);
  });

  it("counts a customer's request and takes its in-flight place in one script on the cluster (one hash tag)", async () => {
    const me = (await request('GET', '/api/v1/jobs', { token: alice.accessToken })).headers;
    const remaining = Number(me.get('ratelimit-remaining'));
    const answered = await request('GET', '/api/v1/jobs', { token: alice.accessToken });
    expect(answered.status).toBe(200);
    expect(Number(answered.headers.get('ratelimit-remaining'))).toBe(remaining - 1);
    // The same script the API runs, on a semaphore and a count of a customer of this test's own.
    const customerId = `cluster-${Date.now()}`;
    const counter = { key: `${app.config.queuePrefix}:ratelimit:test:{${customerId}}:compute`, points: 1, windowSeconds: 60, budget: 2 };
    const first = await app.deps.leases.acquireCounting(placeName('in-flight', customerId), 1, counter);
    expect(first?.consumed).toBe(1);
    expect(first?.place && 'release' in first.place).toBe(true);
    const second = await app.deps.leases.acquireCounting(placeName('in-flight', customerId), 1, counter);
    expect(second?.place).toEqual({ full: 1 });
    const third = await app.deps.leases.acquireCounting(placeName('in-flight', customerId), 1, counter);
    expect(third).toMatchObject({ consumed: 3, place: null });
    expect(await app.deps.redis.get(counter.key)).toBe('3');
    if (first?.place && 'release' in first.place) first.place.release();
    await waitFor(async () => (await app.deps.leases.count(placeName('in-flight', customerId))) === 0, 5_000);
  });

  it('keeps an admin session in the cluster and lists every queue and shard on Bull Board', async () => {
    const login = await fetch(`${app.baseUrl}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.baseUrl },
      body: new URLSearchParams({ email: 'admin@example.test', password: 'admin-password-123' }).toString(),
    });
    expect(login.status).toBe(303);
    const cookie = /chrysalis_admin=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
    const listed = await request('GET', '/admin/queues/api/queues', { headers: { cookie: `chrysalis_admin=${cookie}` } });
    expect(listed.status).toBe(200);
    const names: string[] = listed.body.queues.map((queue: { name: string }) => queue.name);
    expect(names).toEqual(expect.arrayContaining([...Array.from({ length: 16 }, (_, shard) => `{invoke.${shard}}`), '{webhook-delivery}']));
  });

  it('serves /metrics with the queue depths read from every shard', async () => {
    const metrics = await fetch(`${app.baseUrl}/api/v1/metrics`, { headers: { authorization: `Bearer ${app.config.metricsToken}` } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
  });

  it('has the sweeper put back jobs Redis lost, on whichever master their shard lives', async () => {
    const ids: string[] = [];
    for (let x = 0; x < 12; x++) {
      const submitted = await request('POST', '/api/v1/jobs', {
        token: alice.accessToken,
        body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x, y: 1 } }, delay_ms: 3_600_000 },
      });
      expect(submitted.status, submitted.text).toBe(202);
      ids.push(submitted.body.id);
    }
    const queueOf = (id: string) => app.deps.queues.forJob('invoke', id);
    // The adds follow the 202s (queue/pending-enqueues.ts): one landing after its remove would not be lost.
    await app.deps.pendingEnqueues.drain();
    expect(new Set(ids.map((id) => queueOf(id).name)).size).toBeGreaterThan(3);
    for (const id of ids) await queueOf(id).remove(id);
    expect(await queueOf(ids[0]!).getJob(ids[0]!)).toBeUndefined();
    // Rows younger than the sweeper's 10 s grace are left alone; then each is enqueued again under its id.
    await waitFor(
      async () => (await Promise.all(ids.map((id) => queueOf(id).getJob(id)))).every((found) => found?.id !== undefined),
      40_000,
      500,
    );
  }, 60_000);
});
