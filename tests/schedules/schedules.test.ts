import { CronExpressionParser } from 'cron-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobRegistry } from '../../jobs/registry.js';
import { schedulerIdFor } from '../../queue/schedules/user-schedulers.js';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

async function customer(): Promise<{ user: TestUser; customerId: string; substrateId: string }> {
  const user = await registerUser(request);
  const created = await request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'constant', value: 42 },
  });
  expect(created.status, created.text).toBe(201);
  const me = await request('GET', '/api/v1/auth/me', { token: user.accessToken });
  return { user, customerId: me.body.customer_id, substrateId: created.body.substrate_id };
}

const yearly = '0 0 1 1 *';
const schedule = (token: string, body: unknown) => request('POST', '/api/v1/schedules', { token, body });
const invoke = (substrateId: string) => ({ type: 'invoke', payload: { substrate_id: substrateId } });
const ticks = () => app.deps.scheduleTicks;

/** Ticks BullMQ holds for a schedule (waiting, delayed or active): its next run. */
async function pendingRuns(customerId: string, name: string): Promise<number> {
  const pending = await ticks().getJobs(['waiting', 'delayed', 'active', 'prioritized']);
  return pending.filter((tick) => tick?.repeatJobKey === schedulerIdFor(customerId, name)).length;
}

describe('user schedules', () => {
  it("runs an every_ms schedule's first job at once, as the customer's own job in GET /jobs, and shows the next run", async () => {
    const { user, substrateId } = await customer();
    const created = await schedule(user.accessToken, { name: 'frequent', every_ms: 10_000, job: invoke(substrateId) });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      name: 'frequent',
      cron: null,
      every_ms: 10_000,
      tz: 'UTC',
      paused: false,
      job: invoke(substrateId),
    });

    const done = await waitFor(async () => {
      const jobs = await request('GET', '/api/v1/jobs?type=invoke&state=completed', { token: user.accessToken });
      return jobs.body.items?.[0];
    });
    expect(done).toMatchObject({ type: 'invoke', state: 'completed', result: { substrate_id: substrateId, result: 42 } });

    // After the first run BullMQ holds the next one, about 10 s on.
    const listed = await waitFor(async () => {
      const response = await request('GET', '/api/v1/schedules', { token: user.accessToken });
      const item = response.body.items?.[0];
      return item && Date.parse(item.next_run_at) > Date.parse(done.finished_at) ? response : null;
    });
    expect(listed.body.next_cursor).toBeNull();
    expect(Date.parse(listed.body.items[0].next_run_at) - Date.parse(done.created_at)).toBeLessThanOrEqual(10_000 + 1000);
  });

  it('reads cron in its time zone: next_run_at is the next 09:00 in Paris', async () => {
    const { user, substrateId } = await customer();
    const created = await schedule(user.accessToken, { name: 'morning', cron: '0 9 * * *', tz: 'Europe/Paris', job: invoke(substrateId) });
    expect(created.status, created.text).toBe(201);
    const expected = CronExpressionParser.parse('0 9 * * *', { tz: 'Europe/Paris' }).next().toDate().toISOString();
    expect(created.body).toMatchObject({ cron: '0 9 * * *', every_ms: null, tz: 'Europe/Paris', next_run_at: expected });
  });

  it('pauses (scheduler and pending run removed, next_run_at null, row kept) and resumes', async () => {
    const { user, customerId, substrateId } = await customer();
    await schedule(user.accessToken, { name: 'pausable', cron: yearly, job: invoke(substrateId) });
    expect(await pendingRuns(customerId, 'pausable')).toBe(1);

    const paused = await request('POST', '/api/v1/schedules/pausable/pause', { token: user.accessToken });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ name: 'pausable', paused: true, next_run_at: null });
    expect(await ticks().getJobScheduler(schedulerIdFor(customerId, 'pausable'))).toBeUndefined();
    expect(await pendingRuns(customerId, 'pausable')).toBe(0);
    const listed = await request('GET', '/api/v1/schedules', { token: user.accessToken });
    expect(listed.body.items).toEqual([expect.objectContaining({ name: 'pausable', paused: true, next_run_at: null })]);

    const resumed = await request('POST', '/api/v1/schedules/pausable/resume', { token: user.accessToken });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({
      paused: false,
      next_run_at: CronExpressionParser.parse(yearly, { tz: 'UTC' }).next().toDate().toISOString(),
    });
    expect(await pendingRuns(customerId, 'pausable')).toBe(1);
  });

  it('keeps a paused every_ms schedule from creating jobs', async () => {
    const { user, customerId, substrateId } = await customer();
    await schedule(user.accessToken, { name: 'halted', every_ms: 60_000, job: invoke(substrateId) });
    await waitFor(async () => (await request('GET', '/api/v1/jobs?state=completed', { token: user.accessToken })).body.items?.length === 1);
    await request('POST', '/api/v1/schedules/halted/pause', { token: user.accessToken });
    expect(await pendingRuns(customerId, 'halted')).toBe(0);
    expect(await ticks().getJobScheduler(schedulerIdFor(customerId, 'halted'))).toBeUndefined();
    // Re-posting a paused schedule updates it and leaves it paused.
    const updated = await schedule(user.accessToken, { name: 'halted', every_ms: 120_000, job: invoke(substrateId) });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ every_ms: 120_000, paused: true, next_run_at: null });
    expect(await pendingRuns(customerId, 'halted')).toBe(0);
  });

  it('upserts by name: a second POST answers 200 and replaces the definition under the same scheduler', async () => {
    const { user, customerId, substrateId } = await customer();
    expect((await schedule(user.accessToken, { name: 'nightly', cron: yearly, job: invoke(substrateId) })).status).toBe(201);
    const updated = await schedule(user.accessToken, { name: 'nightly', cron: '0 3 1 1 *', job: invoke(substrateId) });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      cron: '0 3 1 1 *',
      next_run_at: CronExpressionParser.parse('0 3 1 1 *', { tz: 'UTC' }).next().toDate().toISOString(),
    });
    expect(await pendingRuns(customerId, 'nightly')).toBe(1);
    const listed = await request('GET', '/api/v1/schedules', { token: user.accessToken });
    expect(listed.body.items).toHaveLength(1);
  });

  it('answers a new schedule 201 with a Location that GET reads; an unknown name 404, a malformed one 400', async () => {
    const { user, substrateId } = await customer();
    const created = await schedule(user.accessToken, { name: 'located.one', cron: yearly, job: invoke(substrateId) });
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get('location')).toBe('/api/v1/schedules/located.one');
    const read = await request('GET', created.headers.get('location') as string, { token: user.accessToken });
    expect(read.status, read.text).toBe(200);
    expect(read.body).toEqual(created.body);
    const replaced = await schedule(user.accessToken, { name: 'located.one', cron: '0 3 1 1 *', job: invoke(substrateId) });
    expect(replaced.status).toBe(200);
    expect((await request('GET', '/api/v1/schedules/located.one', { token: user.accessToken })).body).toEqual(replaced.body);
    expectProblem(await request('GET', '/api/v1/schedules/never-made', { token: user.accessToken }), 404, 'not-found');
    expectProblem(await request('GET', `/api/v1/schedules/${'n'.repeat(65)}`, { token: user.accessToken }), 400, 'validation', [
      'params.name',
    ]);
  });

  it('deletes with 204: the scheduler goes too, and the name is then 404', async () => {
    const { user, customerId, substrateId } = await customer();
    await schedule(user.accessToken, { name: 'short-lived', cron: yearly, job: invoke(substrateId) });
    expect((await request('DELETE', '/api/v1/schedules/short-lived', { token: user.accessToken })).status).toBe(204);
    expect(await ticks().getJobScheduler(schedulerIdFor(customerId, 'short-lived'))).toBeUndefined();
    expect(await pendingRuns(customerId, 'short-lived')).toBe(0);
    expectProblem(await request('DELETE', '/api/v1/schedules/short-lived', { token: user.accessToken }), 404, 'not-found');
    expectProblem(await request('POST', '/api/v1/schedules/short-lived/resume', { token: user.accessToken }), 404, 'not-found');
  });

  it('answers ten concurrent deletes of one schedule with one 204 and nine 404s, as a second delete in turn is answered', async () => {
    const { user, customerId, substrateId } = await customer();
    await schedule(user.accessToken, { name: 'raced', cron: yearly, job: invoke(substrateId) });
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => request('DELETE', '/api/v1/schedules/raced', { token: user.accessToken })),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([204, ...Array<number>(9).fill(404)]);
    for (const answer of answers.filter((a) => a.status === 404)) expectProblem(answer, 404, 'not-found');
    expect(await ticks().getJobScheduler(schedulerIdFor(customerId, 'raced'))).toBeUndefined();
    expectProblem(await request('GET', '/api/v1/schedules/raced', { token: user.accessToken }), 404, 'not-found');
  });

  it('keeps names per customer: another customer cannot see, pause, resume or delete it, and may use the same name', async () => {
    const alice = await customer();
    const bob = await customer();
    await schedule(alice.user.accessToken, { name: 'shared-name', cron: yearly, job: invoke(alice.substrateId) });
    for (const [method, path] of [
      ['POST', '/api/v1/schedules/shared-name/pause'],
      ['POST', '/api/v1/schedules/shared-name/resume'],
      ['GET', '/api/v1/schedules/shared-name'],
      ['DELETE', '/api/v1/schedules/shared-name'],
    ] as const) {
      expectProblem(await request(method, path, { token: bob.user.accessToken }), 404, 'not-found');
    }
    expect((await request('GET', '/api/v1/schedules', { token: bob.user.accessToken })).body.items).toEqual([]);
    expect((await schedule(bob.user.accessToken, { name: 'shared-name', cron: yearly, job: invoke(bob.substrateId) })).status).toBe(201);
    const alices = await request('GET', '/api/v1/schedules', { token: alice.user.accessToken });
    expect(alices.body.items).toEqual([expect.objectContaining({ name: 'shared-name', job: invoke(alice.substrateId), paused: false })]);
    expect(await pendingRuns(alice.customerId, 'shared-name')).toBe(1);
  });

  it('refuses a 101st schedule with 422, while updating an existing one still works', async () => {
    const { user, customerId, substrateId } = await customer();
    // 99 paused rows straight into the table (they count, and need no scheduler), then the 100th through the API.
    await app.sql(
      `insert into schedules (id, customer_id, name, cron, tz, job_type, payload, paused)
       select gen_random_uuid(), $1, 'bulk-' || n, $2, 'UTC', 'invoke', $3::jsonb, true from generate_series(1, 99) n`,
      [customerId, yearly, JSON.stringify({ substrate_id: substrateId })],
    );
    expect((await schedule(user.accessToken, { name: 'hundredth', cron: yearly, job: invoke(substrateId) })).status).toBe(201);
    expectProblem(await schedule(user.accessToken, { name: 'one-too-many', cron: yearly, job: invoke(substrateId) }), 422, 'unprocessable');
    expect((await schedule(user.accessToken, { name: 'hundredth', cron: '0 0 2 1 *', job: invoke(substrateId) })).status).toBe(200);

    const first = await request('GET', '/api/v1/schedules?limit=60', { token: user.accessToken });
    const second = await request('GET', `/api/v1/schedules?limit=60&cursor=${first.body.next_cursor}`, { token: user.accessToken });
    expect(first.body.items).toHaveLength(60);
    expect(second.body).toMatchObject({ next_cursor: null });
    expect(second.body.items).toHaveLength(40);
  });

  describe('validation', () => {
    let token: string;
    let substrateId: string;
    beforeAll(async () => {
      const c = await customer();
      token = c.user.accessToken;
      substrateId = c.substrateId;
    });

    it('accepts an interval of exactly 10,000 ms, and refuses 9,999 with 422 naming body.every_ms', async () => {
      expectProblem(await schedule(token, { name: 'too-often', every_ms: 9_999, job: invoke(substrateId) }), 422, 'unprocessable', [
        'body.every_ms',
      ]);
      expect((await schedule(token, { name: 'just-right', every_ms: 10_000, job: invoke(substrateId) })).status).toBe(201);
    });

    it.each([
      [
        'a cron expression that does not parse',
        { cron: 'every day at noon' },
        'body.cron',
        /body\.cron must be 5 fields \(minute hour day-of-month month day-of-week\) or 6/,
      ],
      [
        'a cron of the wrong shape',
        { cron: 'every day' },
        'body.cron',
        /body\.cron must be 5 fields \(minute hour day-of-month month day-of-week\) or 6 with seconds first, such as "0 9 \* \* \*"/,
      ],
      ['an out-of-range cron field', { cron: '61 * * * *' }, 'body.cron', /body\.cron minute field "61" must be within 0-59$/],
      ['an out-of-range field of a 6-field cron', { cron: '0 0 25 * * *' }, 'body.cron', /body\.cron hour field "25" must be within 0-23$/],
      [
        'a cron field that is not a number, range, list or step',
        { cron: '0 9 * * monday' },
        'body.cron',
        /body\.cron day-of-week field "monday" is not valid/,
      ],
      ['a cron that names no real date', { cron: '0 0 30 2 *' }, 'body.cron', /never fires/],
      ['a cron that fires every 5 seconds', { cron: '*/5 * * * * *' }, 'body.cron', /more often than every 10 seconds/],
      ['an unknown time zone', { cron: '0 9 * * *', tz: 'Mars/Olympus_Mons' }, 'body.tz', /not an IANA time zone/],
    ])('refuses %s with 422 and the reason', async (_label, spec, field, reason) => {
      const response = await schedule(token, { name: 'invalid', ...spec, job: invoke(substrateId) });
      expectProblem(response, 422, 'unprocessable', [field]);
      expect(response.body.detail).toMatch(reason);
    });

    it.each([
      ['both cron and every_ms', { cron: yearly, every_ms: 60_000, job: { type: 'invoke', payload: {} } }, 'body.cron body.every_ms'],
      ['neither cron nor every_ms', { job: { type: 'invoke', payload: {} } }, 'body.cron'],
      ['tz with every_ms', { every_ms: 60_000, tz: 'UTC', job: { type: 'invoke', payload: {} } }, 'body.tz'],
      ['an unknown job type', { cron: yearly, job: { type: 'teleport', payload: {} } }, 'body.job.type'],
      [
        'a payload the job type rejects',
        { cron: yearly, job: { type: 'invoke', payload: { substrate_id: 'nope' } } },
        'body.job.payload.substrate_id',
      ],
      [
        'an unknown payload field',
        { cron: yearly, job: { type: 'invoke', payload: { substrate_id: '0x0000000000000001', extra: 1 } } },
        'body.job.payload.extra',
      ],
      ['a fractional interval', { every_ms: 10_000.5, job: { type: 'invoke', payload: {} } }, 'body.every_ms'],
    ])('refuses %s with 400 naming the field', async (_label, body, field) => {
      expectProblem(await schedule(token, { name: 'invalid', ...body }), 400, 'validation', field.split(' '));
    });

    it("refuses at creation, with 404, a job naming a substrate that does not exist or is another customer's", async () => {
      const other = await customer();
      const missing = '0x00000000000000ab';
      for (const job of [
        invoke(missing),
        invoke(other.substrateId),
        { type: 'divide', payload: { substrate_id: other.substrateId } },
        { type: 'batch', payload: { invocations: [{ substrate_id: substrateId }, { substrate_id: missing, parameters: { x: 1 } }] } },
      ]) {
        const response = await schedule(token, { name: 'dangling', cron: yearly, job });
        expectProblem(response, 404, 'not-found');
        expect(response.body.detail, JSON.stringify(job)).toMatch(/^substrate 0x[0-9a-f]{16} not found$/);
      }
      // A multiply names no substrate, and a batch of the customer's own substrates is fine.
      for (const job of [
        { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } } },
        { type: 'batch', payload: { invocations: [{ substrate_id: substrateId }] } },
      ]) {
        expect((await schedule(token, { name: 'well-formed', cron: yearly, job })).status).toBeLessThan(300);
      }
      expect((await request('DELETE', '/api/v1/schedules/well-formed', { token })).status).toBe(204);
    });

    it('refuses a malformed name with 400', async () => {
      expectProblem(await schedule(token, { name: 'has spaces', cron: yearly, job: invoke(substrateId) }), 400, 'validation', [
        'body.name',
      ]);
      expectProblem(await schedule(token, { name: 'x'.repeat(65), cron: yearly, job: invoke(substrateId) }), 400, 'validation', [
        'body.name',
      ]);
    });

    const adminOnly = [...jobRegistry.values()].find((definition) => definition.adminOnly);
    it.runIf(adminOnly)('refuses an admin-only job type to a user with 403', async () => {
      expectProblem(await schedule(token, { name: 'sneaky', cron: yearly, job: { type: adminOnly?.name, payload: {} } }), 403, 'forbidden');
    });

    it('left no schedule behind for any refused request', async () => {
      const listed = await request('GET', '/api/v1/schedules', { token });
      expect(listed.body.items.map((item: { name: string }) => item.name)).toEqual(['just-right']);
    });
  });
});
