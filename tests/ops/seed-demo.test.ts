import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/suite.js';

const suite = useTestApp({ workers: true });

/** `npm run seed:demo` against the test app, as an operator runs it against `npm start`. */
async function seed(env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)('npm', ['run', '--silent', 'seed:demo'], {
      env: {
        ...process.env,
        CHRYSALIS_BASE_URL: suite.app.baseUrl,
        ADMIN_EMAIL: 'admin@example.test',
        ADMIN_PASSWORD: 'admin-password-123',
        DATA_DIR: '.data/test',
        ...env,
      },
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/**
 * What the demo customers hold, counted in PostgreSQL. Usage counts the windows that started before `usageBefore`:
 * one boundary for every count a test compares (with `now()` it moved, and a run across the hour counted one more window).
 */
async function demoData(usageBefore: Date) {
  const [customers] = await suite.app.sql<{ n: number }>(`select count(*)::int as n from users where email like '%.demo@example.com'`);
  const demo = `(select customer_id from users where email like '%.demo@example.com')`;
  const count = async (table: string) =>
    (await suite.app.sql<{ n: number }>(`select count(*)::int as n from ${table} where customer_id in ${demo}`))[0]!.n;
  const states = await suite.app.sql<{ state: string; n: number }>(
    `select state, count(*)::int as n from jobs where customer_id in ${demo} and schedule_name is null group by state order by state`,
  );
  const usage = await suite.app.sql<{ days: number; requests: number; services: string[] }>(
    `select count(distinct date_trunc('day', window_start))::int as days, coalesce(sum(request_count), 0)::int as requests, array_agg(distinct service_type order by service_type) as services
       from usage_records where customer_id in ${demo} and window_start < $1`,
    [usageBefore],
  );
  return {
    customers: customers!.n,
    substrates: await count('substrates'),
    relationships: await count('relationships'),
    schedules: await count('schedules'),
    pausedSchedules: (
      await suite.app.sql<{ n: number }>(`select count(*)::int as n from schedules where paused and customer_id in ${demo}`)
    )[0]!.n,
    webhooks: await suite.app.sql<{ url: string }>(`select url from webhook_endpoints where customer_id in ${demo}`),
    apiKeys: await count('api_keys'),
    batches: (await suite.app.sql<{ n: number }>(`select count(*)::int as n from jobs where type = 'batch' and customer_id in ${demo}`))[0]!
      .n,
    jobStates: Object.fromEntries(states.map((row) => [row.state, row.n])),
    usage: usage[0]!,
  };
}

describe('npm run seed:demo', () => {
  it('fills a running instance through its API with two customers, jobs in every final state and delayed ones, a batch, schedules, loopback webhooks and a week of usage; a second run adds nothing', async () => {
    const first = await seed();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/ingested \d+ request-log rows over the last 7 days/);
    const summary = JSON.parse(first.stdout);
    expect(summary.customers.map((customer: { email: string }) => customer.email)).toEqual([
      'ada.demo@example.com',
      'grace.demo@example.com',
    ]);

    const usageBefore = new Date(Date.now() - 24 * 3_600_000);
    const data = await demoData(usageBefore);
    console.log(`[seed:demo] ${JSON.stringify(data)}`);
    expect(data).toMatchObject({ customers: 2, substrates: 6, relationships: 4, schedules: 6, pausedSchedules: 2, apiKeys: 2, batches: 2 });
    expect(data.jobStates).toMatchObject({ completed: expect.any(Number), failed: 2, cancelled: 2, delayed: 2 });
    expect(data.webhooks.map((webhook) => new URL(webhook.url).hostname)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(data.usage.days).toBeGreaterThanOrEqual(6);
    expect(data.usage.services).toEqual(['compute', 'seal']);

    const second = await seed();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('a week of usage is already there');
    const again = await demoData(usageBefore);
    expect({ ...again, usage: again.usage.requests }).toEqual({ ...data, usage: data.usage.requests });
  }, 180_000);

  it('refuses a webhook URL that is not a loopback address, before calling the instance', async () => {
    const run = await seed({ DEMO_WEBHOOK_URL: 'https://hooks.example.com/chrysalis' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/DEMO_WEBHOOK_URL must be a loopback address/);
  });
});
