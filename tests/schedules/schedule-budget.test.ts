import { beforeAll, describe, expect, it } from 'vitest';
import { peakRunsPerMinute } from '../../queue/schedules/schedule-rules.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * A customer's budget of scheduled work (TIER_SCHEDULE_ITEMS_PER_MIN, batch items a minute by tier): a schedule
 * whose peak minute alone would exceed it is refused at creation with 422 naming what to change.
 */
const suite = useTestApp({ users: 2, env: { TIER_SCHEDULE_ITEMS_PER_MIN: 'starter=100,pro=1000,enterprise=10000' } });
let user: TestUser;
let substrateId: string;

beforeAll(async () => {
  user = suite.users[0] as TestUser;
  const created = await suite.request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'expression', expression: 'x * 2' },
  });
  substrateId = created.body.substrate_id;
});

const batchOf = (items: number) => ({
  type: 'batch',
  payload: { invocations: Array.from({ length: items }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i } })) },
});
const create = (token: string, body: Record<string, unknown>) => suite.request('POST', '/api/v1/schedules', { token, body });

describe('the budget of scheduled work', () => {
  it('accepts a batch schedule within the tier budget (10 items every 10 s: 60 a minute of 100)', async () => {
    expect((await create(user.accessToken, { name: 'within', every_ms: 10_000, job: batchOf(10) })).status).toBe(201);
  });

  it('refuses one whose runs add up past it in a minute (20 items every 10 s: 120), naming every_ms', async () => {
    const response = await create(user.accessToken, { name: 'too-often', every_ms: 10_000, job: batchOf(20) });
    expectProblem(response, 422, 'unprocessable', ['body.every_ms']);
    expect(response.body.detail).toMatch(/120 items of work in a minute .*allows 100/);
  });

  it('refuses one whose single run is past it, however rare (101 items hourly), naming the payload', async () => {
    expectProblem(await create(user.accessToken, { name: 'too-big', every_ms: 3_600_000, job: batchOf(101) }), 422, 'unprocessable', [
      'body.job.payload',
    ]);
  });

  it('counts a cron schedule by its densest minute: every 10 s refused, hourly accepted', async () => {
    expectProblem(await create(user.accessToken, { name: 'cron-dense', cron: '*/10 * * * * *', job: batchOf(20) }), 422, 'unprocessable', [
      'body.cron',
    ]);
    expect((await create(user.accessToken, { name: 'cron-hourly', cron: '0 * * * *', job: batchOf(20) })).status).toBe(201);
  });

  it('counts a job that is not a batch as one item', async () => {
    const invoke = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1 } } };
    expect((await create(user.accessToken, { name: 'single', every_ms: 10_000, job: invoke })).status).toBe(201);
  });

  it('gives a higher tier its own budget', async () => {
    const me = await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken });
    await suite.app.sql(`update service_instances set tier = 'pro' where customer_id = $1 and service_type = 'compute'`, [
      me.body.customer_id,
    ]);
    await suite.app.deps.principals.invalidateCustomer(me.body.customer_id);
    expect((await create(user.accessToken, { name: 'pro-often', every_ms: 10_000, job: batchOf(20) })).status).toBe(201);
  });
});

describe('peakRunsPerMinute', () => {
  it('is ceil(60 s / interval) for every_ms and the densest minute for cron', () => {
    expect(peakRunsPerMinute({ everyMs: 10_000 })).toBe(6);
    expect(peakRunsPerMinute({ everyMs: 25_000 })).toBe(3);
    expect(peakRunsPerMinute({ everyMs: 3_600_000 })).toBe(1);
    expect(peakRunsPerMinute({ cron: '*/10 * * * * *', tz: 'UTC' })).toBe(6);
    expect(peakRunsPerMinute({ cron: '0,30 * * * * *', tz: 'UTC' })).toBe(2);
    expect(peakRunsPerMinute({ cron: '0 9 * * *', tz: 'UTC' })).toBe(1);
  });
});
