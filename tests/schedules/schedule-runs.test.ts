import { Queue } from 'bullmq';
import { scheduleTickQueueName } from '../../queue/schedules/tick-queue.js';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type RedisClient } from '../../lib/redis.js';
import { insertRequestLogs } from '../../db/repositories/request-logs.js';
import { billingJob } from '../../jobs/billing/billing.job.js';
import { meteringJob } from '../../jobs/metering/metering.job.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { billingState, runJob, seedCustomer } from '../billing/back-office-fixtures.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let connection: RedisClient;
/** Where scheduler ticks wait (named here, not imported: these tests describe behaviour, whatever the queues). */
let ticks: Queue;

beforeAll(async () => {
  // Workers check every SWEEPER_INTERVAL_MS that Redis still holds the schedules.
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '500' });
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

interface Customer {
  user: TestUser;
  customerId: string;
  substrateId: string;
}

async function customer(): Promise<Customer> {
  const user = await registerUser(request);
  const created = await request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'constant', value: 42 },
  });
  expect(created.status, created.text).toBe(201);
  const [row] = await app.sql<{ customer_id: string }>(`select customer_id from users where email = $1`, [user.email]);
  return { user, customerId: row!.customer_id, substrateId: created.body.substrate_id };
}

const schedulerId = (customerId: string, name: string) => `cust:${customerId}:${name}`;

/** Makes the schedule's next run happen now (its pending BullMQ job, wherever it waits, is promoted). */
async function fireNextRun(customerId: string, name: string): Promise<void> {
  const id = schedulerId(customerId, name);
  const next = await waitFor(async () => {
    for (const queue of [...app.deps.queues.all(), ticks] as Queue[]) {
      const delayed = await queue.getJobs(['delayed']);
      const found = delayed.find((job) => job?.repeatJobKey === id || job?.id?.startsWith(`repeat:${id}:`));
      if (found) return found;
    }
    return null;
  });
  await next.promote();
}

interface JobRow {
  id: string;
  state: string;
  schedule_name: string | null;
  created_at: Date;
}

const jobsOf = (customerId: string) =>
  app.sql<JobRow>(
    `select id, state, to_jsonb(jobs) -> 'schedule_name' #>> '{}' as schedule_name, created_at from jobs where customer_id = $1 order by created_at`,
    [customerId],
  );

const scheduledLogs = (customerId: string) =>
  app.sql<{ service_type: string; method: string; status_code: number; bytes_out: string }>(
    `select service_type, method, status_code, bytes_out from request_logs where customer_id = $1 and method = 'SCHEDULE' order by id`,
    [customerId],
  );

/** Flushes the request-log buffers of the API and of the workers' tick processor. */
async function flushRequestLogs(): Promise<void> {
  await app.deps.requestLog.flush();
  await (await app.startWorkers()).requestLog.flush();
}

/** Deletes every key of this file's prefix: Redis restarted without its data. */
async function emptyRedis(): Promise<void> {
  const redis = createRedis(app.config.redis);
  await deleteKeys(redis, `${app.config.queuePrefix}:*`);
  await redis.quit();
}

const isUuidV7 = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id);

describe("a schedule's run is an ordinary job", () => {
  it('gets a UUIDv7 row first, the same id in BullMQ, the schedule named on the row, a request-log row, and sorts newest first', async () => {
    const alice = await customer();
    const created = await request('POST', '/api/v1/schedules', {
      token: alice.user.accessToken,
      body: { name: 'hourly', every_ms: 3_600_000, job: { type: 'invoke', payload: { substrate_id: alice.substrateId } } },
    });
    expect(created.status, created.text).toBe(201);
    const [run] = await waitFor(async () => {
      const rows = await jobsOf(alice.customerId);
      return rows.length === 1 && rows[0]!.state === 'completed' ? rows : null;
    });
    expect(isUuidV7(run!.id), run!.id).toBe(true);
    expect(run!.schedule_name).toBe('hourly');
    expect(await bullJob(app.deps.queues, 'invoke', run!.id)).toBeDefined();
    const polled = await request('GET', `/api/v1/jobs/${run!.id}`, { token: alice.user.accessToken });
    expect(polled.body).toMatchObject({ id: run!.id, state: 'completed', result: { result: 42 }, started_at: expect.any(String) });

    await waitFor(async () => {
      await flushRequestLogs();
      return (await scheduledLogs(alice.customerId)).length === 1;
    });
    expect(await scheduledLogs(alice.customerId)).toEqual([
      { service_type: 'compute', method: 'SCHEDULE', status_code: 202, bytes_out: '0' },
    ]);

    // A job submitted after the run is listed before it.
    const later = await request('POST', `/api/v1/substrates/${alice.substrateId}/invoke`, { token: alice.user.accessToken, body: {} });
    const listed = await request('GET', '/api/v1/jobs', { token: alice.user.accessToken });
    expect(listed.body.items.map((job: { id: string }) => job.id)).toEqual([later.body.id, run!.id]);
  });

  it("a suspended customer's schedule creates no job until the service resumes", async () => {
    const bob = await customer();
    const created = await request('POST', '/api/v1/schedules', {
      token: bob.user.accessToken,
      body: { name: 'suspendable', every_ms: 3_600_000, job: { type: 'invoke', payload: { substrate_id: bob.substrateId } } },
    });
    expect(created.status, created.text).toBe(201);
    await waitFor(async () => (await jobsOf(bob.customerId)).length === 1);

    await app.sql(`update service_instances set suspended_reason = 'insufficient_balance' where customer_id = $1`, [bob.customerId]);
    await fireNextRun(bob.customerId, 'suspendable');
    // The run is refused like a call to a suspended service: recorded with 402, no job.
    const refused = await waitFor(async () => {
      await flushRequestLogs();
      const logs = await scheduledLogs(bob.customerId);
      const jobs = await jobsOf(bob.customerId);
      return jobs.length > 1 || logs.some((log) => log.status_code === 402) ? { logs, jobs } : null;
    });
    expect(refused.jobs).toHaveLength(1);
    expect(refused.logs.map((log) => log.status_code)).toEqual([202, 402]);

    await app.sql(`update service_instances set suspended_reason = null where customer_id = $1`, [bob.customerId]);
    await fireNextRun(bob.customerId, 'suspendable');
    const resumed = await waitFor(async () => {
      const jobs = await jobsOf(bob.customerId);
      return jobs.length === 2 && jobs[1]!.state === 'completed' ? jobs : null;
    });
    expect(resumed[1]!.schedule_name).toBe('suspendable');
  });

  it('a scheduled run appears in usage and is charged by billing', async () => {
    // Two customers with money and 49 compute calls each in the same hour (0.49¢ at the starter price,
    // which rounds to nothing); only one has a schedule, whose run makes it 50 calls: 0.5¢, charged 1¢.
    const withSchedule = await seedCustomer(app, { depositUsdCents: 100 });
    const without = await seedCustomer(app, { depositUsdCents: 100 });
    await app.sql(
      `insert into schedules (id, customer_id, name, every_ms, tz, job_type, payload) values ($1, $2, 'metered', 3600000, 'UTC', 'invoke', $3::jsonb)`,
      [uuidv7(), withSchedule, JSON.stringify({ operation: { op: 'multiply', dimension_values: [6, 7] } })],
    );
    // A worker starting up writes the schedules it finds in PostgreSQL into Redis.
    await app.stopWorkers();
    await app.startWorkers();
    const [run] = await waitFor(async () => {
      const rows = await jobsOf(withSchedule);
      return rows[0]?.state === 'completed' ? rows : null;
    });
    expect(run!.schedule_name).toBe('metered');
    const [logged] = await waitFor(async () => {
      await flushRequestLogs();
      const rows = await app.sql<{ timestamp: Date }>(`select timestamp from request_logs where customer_id = $1 and method = 'SCHEDULE'`, [
        withSchedule,
      ]);
      return rows.length > 0 ? rows : null;
    });
    for (const customerId of [withSchedule, without]) {
      await insertRequestLogs(
        app.deps.orm.em.fork(),
        Array.from({ length: 49 }, () => ({
          timestamp: logged!.timestamp,
          customerId,
          serviceType: 'compute',
          method: 'POST',
          statusCode: 202,
          bytesOut: 0,
        })),
      );
    }

    await runJob(meteringJob, app, app.deps.orm);
    const usage = await app.sql<{ customer_id: string; requests: number }>(
      `select customer_id, sum(request_count)::int as requests from usage_records where customer_id in ($1, $2) and service_type = 'compute' group by customer_id`,
      [withSchedule, without],
    );
    expect(Object.fromEntries(usage.map((row) => [row.customer_id, row.requests]))).toEqual({ [withSchedule]: 50, [without]: 49 });

    await runJob(billingJob, app, app.deps.orm);
    expect(await billingState(app, withSchedule)).toMatchObject({ balance: 99, charges: [1], unbilledRecords: 0 });
    expect(await billingState(app, without)).toMatchObject({ balance: 100, charges: [], unbilledRecords: 0 });
  });

  it('after Redis is emptied and the workers restart, every active schedule is back on its clock (a paused one stays paused)', async () => {
    const carol = await customer();
    const token = carol.user.accessToken;
    const invoke = { type: 'invoke', payload: { substrate_id: carol.substrateId } };
    for (const body of [
      { name: 'every-hour', every_ms: 3_600_000, job: invoke },
      { name: 'new-year', cron: '0 0 1 1 *', job: invoke },
      { name: 'held', cron: '0 0 2 1 *', job: invoke },
    ]) {
      expect((await request('POST', '/api/v1/schedules', { token, body })).status).toBe(201);
    }
    expect((await request('POST', '/api/v1/schedules/held/pause', { token })).status).toBe(200);
    const [first] = await waitFor(async () => {
      const jobs = await jobsOf(carol.customerId);
      return jobs.filter((job) => job.state === 'completed').length === 1 ? jobs : null;
    });

    await app.stopWorkers();
    await emptyRedis();
    await app.startWorkers();

    // The interval one is back an interval after its last run (not at once: that would be an extra run).
    const everyHour = await waitFor(() => ticks.getJobScheduler(schedulerId(carol.customerId, 'every-hour')));
    expect(Math.abs(Number(everyHour.next) - (first!.created_at.getTime() + 3_600_000))).toBeLessThan(1_000);
    expect(await jobsOf(carol.customerId)).toHaveLength(1);
    const listed = await request('GET', '/api/v1/schedules', { token });
    const next = Object.fromEntries(
      listed.body.items.map((item: { name: string; next_run_at: string | null }) => [item.name, item.next_run_at]),
    );
    expect(next['every-hour']).toEqual(expect.any(String));
    expect(next.held).toBeNull();
    const cron = await ticks.getJobScheduler(schedulerId(carol.customerId, 'new-year'));
    expect(cron, 'the cron schedule is back in Redis').toMatchObject({ pattern: '0 0 1 1 *', tz: 'UTC' });
    expect(await ticks.getJobScheduler(schedulerId(carol.customerId, 'held'))).toBeUndefined();
  });

  it('after Redis is emptied under running workers, active schedules come back without a restart', async () => {
    const dave = await customer();
    const created = await request('POST', '/api/v1/schedules', {
      token: dave.user.accessToken,
      body: { name: 'survivor', every_ms: 3_600_000, job: { type: 'invoke', payload: { substrate_id: dave.substrateId } } },
    });
    expect(created.status, created.text).toBe(201);
    const [first] = await waitFor(async () => {
      const jobs = await jobsOf(dave.customerId);
      return jobs.filter((job) => job.state === 'completed').length === 1 ? jobs : null;
    });

    await emptyRedis();
    // Back within a sweep, its next run an interval after its last.
    const survivor = await waitFor(() => ticks.getJobScheduler(schedulerId(dave.customerId, 'survivor')), 20_000);
    expect(Math.abs(Number(survivor.next) - (first!.created_at.getTime() + 3_600_000))).toBeLessThan(1_000);
    expect(await jobsOf(dave.customerId)).toHaveLength(1);
  });
});
