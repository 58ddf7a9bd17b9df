import { Queue } from 'bullmq';
import { scheduleTickQueueName } from '../../queue/schedules/tick-queue.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type RedisClient } from '../../lib/redis.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let connection: RedisClient;
let ticks: Queue;

beforeAll(async () => {
  // The starter tier allows 100 requests a minute; × 0.03 here: 3.
  app = await startTestApp({ RATE_LIMIT_MULTIPLIER: '0.03' });
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  connection = createRedis(app.config.redis, 'blocking');
  ticks = new Queue(scheduleTickQueueName, { connection, prefix: app.config.queuePrefix });
});

afterAll(async () => {
  await ticks?.close();
  await connection?.quit();
  await app?.close();
});

describe("a schedule's run counts against the tier's rate limit", () => {
  it('a run past the per-minute limit is skipped and recorded with 429, like a refused call', async () => {
    const user = await registerUser(request);
    const [row] = await app.sql<{ customer_id: string }>(`select customer_id from users where email = $1`, [user.email]);
    const customerId = row!.customer_id;
    const substrate = await request('POST', '/api/v1/substrates', {
      token: user.accessToken,
      body: { expression_type: 'constant', value: 1 },
    });
    expect(substrate.status).toBe(201);
    const created = await request('POST', '/api/v1/schedules', {
      token: user.accessToken,
      body: { name: 'busy', every_ms: 3_600_000, job: { type: 'invoke', payload: { substrate_id: substrate.body.substrate_id } } },
    });
    expect(created.status).toBe(201);
    // Two calls and the first run: the minute's budget of 3 is spent, so the next call is refused.
    await waitFor(async () => (await app.sql(`select 1 from jobs where customer_id = $1`, [customerId])).length === 1);
    expect(
      (await request('POST', '/api/v1/substrates', { token: user.accessToken, body: { expression_type: 'constant', value: 2 } })).status,
    ).toBe(429);

    const id = `cust:${customerId}:busy`;
    const next = await waitFor(async () => {
      for (const queue of [...app.deps.queues.all(), ticks] as Queue[]) {
        const found = (await queue.getJobs(['delayed'])).find((job) => job?.repeatJobKey === id || job?.id?.startsWith(`repeat:${id}:`));
        if (found) return found;
      }
      return null;
    });
    await next.promote();
    const outcome = await waitFor(async () => {
      await app.deps.requestLog.flush();
      await (await app.startWorkers()).requestLog.flush();
      const jobs = await app.sql(`select id from jobs where customer_id = $1`, [customerId]);
      const logs = await app.sql<{ status_code: number }>(
        `select status_code from request_logs where customer_id = $1 and method = 'SCHEDULE' order by id`,
        [customerId],
      );
      return jobs.length > 1 || logs.some((log) => log.status_code === 429) ? { jobs, logs } : null;
    });
    expect(outcome.jobs).toHaveLength(1);
    expect(outcome.logs.map((log) => log.status_code)).toEqual([202, 429]);
  });
});
