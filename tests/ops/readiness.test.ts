import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createRedis } from '../../lib/redis.js';
import { liveWorkers } from '../../queue/worker-heartbeats.js';
import { HeartbeatPublisher } from '../../workers/heartbeat.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp | null = null;
let redisServer: PrivateRedis | null = null;

afterEach(async () => {
  await app?.close();
  await redisServer?.stop();
  app = null;
  redisServer = null;
});

const ready = async (baseUrl: string) => httpClient(baseUrl)('GET', '/api/v1/ready');

describe('GET /ready', () => {
  it('answers 503 while no worker sends a heartbeat, and 200 once workers run', async () => {
    app = await startTestApp({ READY_REQUIRES_WORKER: 'true' });
    const before = await ready(app.baseUrl);
    expect(before.status).toBe(503);
    expect(before.body.checks.workers).toMatchObject({ ok: false, error: expect.stringMatching(/heartbeat/) });
    expect(before.body.checks.postgres.ok).toBe(true);

    await app.startWorkers();
    const after = await waitFor(async () => {
      const response = await ready(app!.baseUrl);
      return response.status === 200 && response;
    });
    expect(after.body.checks.workers.ok).toBe(true);
    const workers = await liveWorkers(app.deps.redis, app.config.queuePrefix);
    expect(workers).toHaveLength(1);
    expect(workers[0]!.id).toMatch(/-\d+$/);
  });

  it('turns red when a job has waited over a minute while live workers take nothing', async () => {
    app = await startTestApp({ READY_REQUIRES_WORKER: 'true' });
    // A worker process that beats but never takes a job (its event loop runs; its BullMQ loop does not).
    const redis = createRedis(app.config.redis);
    const idle = new HeartbeatPublisher(redis, app.config.queuePrefix, pino({ level: 'silent' }));
    await idle.start();
    try {
      expect((await ready(app.baseUrl)).status).toBe(200);

      const queue = app.deps.queues.ofType('invoke')[0]!;
      const stuck = await queue.add(
        'invoke',
        { customerId: '00000000-0000-0000-0000-000000000000', payload: {} },
        { timestamp: Date.now() - 120_000 },
      );
      // An answer serves every probe for up to readinessReuseMs (1 s), so the change shows within that.
      const red = await waitFor(async () => {
        const response = await ready(app!.baseUrl);
        return response.status === 503 && response;
      });
      expect(red.body.checks.workers.error).toMatch(/waited 1[12]\d s; 1 worker process\(es\) are alive but none has started a job yet/);

      await stuck.remove();
      await waitFor(async () => (await ready(app!.baseUrl)).status === 200);
    } finally {
      await idle.stop();
      await redis.quit();
    }
    await waitFor(async () => (await ready(app!.baseUrl)).status === 503);
  });

  // On a Redis Cluster a keyless PING goes to any master, beside other suites' connection checks: counted on one Redis only.
  it.skipIf(Boolean(inject('redisClusterNodes')))(
    'answers a burst of probes from one check: /ready needs no credentials, so probes must not each query the stores',
    async () => {
      app = await startTestApp();
      // Each check sends one PING (and one `select 1`); Redis counts its commands at once, PostgreSQL's statistics lag.
      const pings = async () => Number(/cmdstat_ping:calls=(\d+)/.exec(await app!.deps.redis.info('commandstats'))?.[1] ?? 0);
      expect((await ready(app.baseUrl)).status).toBe(200);
      const before = await pings();
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(Array.from({ length: 40 }, () => ready(app!.baseUrl)));
        expect(answers.every((answer) => answer.status === 200 && answer.body.checks.postgres.ok === true)).toBe(true);
      }
      // 200 probes in well under the reuse window's few seconds: a check or a few, not 200.
      expect((await pings()) - before).toBeLessThan(10);
    },
  );

  it('goes 503 when Redis is unreachable and 200 again after it comes back', async () => {
    redisServer = await startPrivateRedis();
    app = await startTestApp({ REDIS_URL: redisServer.url });
    expect((await ready(app.baseUrl)).status).toBe(200);

    await redisServer.kill();
    const down = await waitFor(async () => {
      const response = await ready(app!.baseUrl);
      return response.status === 503 && response;
    });
    expect(down.body.checks.redis.ok).toBe(false);
    expect(down.body.checks.postgres.ok).toBe(true);

    await redisServer.start();
    await waitFor(async () => (await ready(app!.baseUrl)).status === 200, 20_000);
  });
});
