import http from 'node:http';
import pg from 'pg';
import { placeName } from '../../api/concurrency-limits.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * A customer's bulk writes in flight (TIER_MAX_BULK_IN_FLIGHT) are capped well below the API's database pool
 * (10 connections), so one customer's slow bulk submits cannot hold every connection. With only the
 * in-flight cap (starter 10), ten slow bulks from one starter took the whole pool and stalled every tenant.
 * Here the attacker's job inserts are held by a trigger waiting on an advisory lock the test holds.
 */
const suite = useTestApp({
  users: 2,
  env: { TIER_MAX_IN_FLIGHT: 'starter=10,pro=50,enterprise=200', TIER_MAX_BULK_IN_FLIGHT: 'starter=2,pro=3,enterprise=4' },
});
const holdLock = 4_242_001;
let attacker: TestUser & { customerId: string; substrateId: string };
let victim: TestUser & { customerId: string; substrateId: string };
let holder: pg.Client;

async function withCustomer(user: TestUser) {
  const me = await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken });
  const created = await suite.request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'expression', expression: 'x * y' },
  });
  expect(created.status, created.text).toBe(201);
  return { ...user, customerId: me.body.customer_id as string, substrateId: created.body.substrate_id as string };
}

beforeAll(async () => {
  const [a, v] = suite.users as [TestUser, TestUser];
  attacker = await withCustomer(a);
  victim = await withCustomer(v);
  await suite.app.sql(`
    create function hold_attacker_jobs() returns trigger language plpgsql as $$
    begin
      if new.customer_id = '${attacker.customerId}' then perform pg_advisory_xact_lock_shared(${holdLock}); end if;
      return new;
    end $$`);
  await suite.app.sql(`create trigger hold_attacker_jobs before insert on jobs for each row execute function hold_attacker_jobs()`);
  holder = new pg.Client({ connectionString: suite.app.config.databaseUrl });
  await holder.connect();
});

afterAll(async () => {
  await holder?.end();
});

let x = 0;
const bulk = (user: typeof attacker) =>
  suite.request('POST', '/api/v1/jobs/bulk', {
    token: user.accessToken,
    body: { jobs: [{ type: 'invoke', payload: { substrate_id: user.substrateId, parameters: { x: ++x, y: 2 } } }] },
  });

describe('bulk writes in flight per customer', () => {
  it("serves another customer while one holds its maximum of slow bulks, and refuses that one's extra bulks with 429", async () => {
    await holder.query('select pg_advisory_lock($1)', [holdLock]);
    const attacks = Array.from({ length: 10 }, () => bulk(attacker));
    try {
      await waitFor(async () => (await suite.app.deps.leases.count(placeName('bulk-writes', attacker.customerId))) === 2, 15_000);
      // The victim's bulk and reads get database connections meanwhile.
      const served = await bulk(victim);
      expect(served.status, served.text).toBe(202);
      expect((await suite.request('GET', '/api/v1/jobs', { token: victim.accessToken })).status).toBe(200);
    } finally {
      await holder.query('select pg_advisory_unlock($1)', [holdLock]);
    }
    const answers = await Promise.all(attacks);
    expect(answers.map((answer) => answer.status).sort()).toEqual([202, 202, 429, 429, 429, 429, 429, 429, 429, 429]);
    const refused = answers.find((answer) => answer.status === 429)!;
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body.detail).toMatch(/bulk writes in flight/);
    // Places are released when the answers go out: the attacker may bulk again.
    await waitFor(async () => (await suite.app.deps.leases.count(placeName('bulk-writes', attacker.customerId))) === 0, 10_000);
    expect((await bulk(attacker)).status).toBe(202);
  });

  it('does not count other requests as bulk writes', async () => {
    await holder.query('select pg_advisory_lock($1)', [holdLock]);
    const held = [bulk(attacker), bulk(attacker)];
    try {
      await waitFor(async () => (await suite.app.deps.leases.count(placeName('bulk-writes', attacker.customerId))) === 2, 15_000);
      expect((await suite.request('GET', '/api/v1/jobs', { token: attacker.accessToken })).status).toBe(200);
    } finally {
      await holder.query('select pg_advisory_unlock($1)', [holdLock]);
    }
    expect((await Promise.all(held)).map((answer) => answer.status)).toEqual([202, 202]);
  });

  it("refuses a bulk write past the cap before reading its body: the attacker's 10 MB bodies are not read to be refused", async () => {
    /** A bulk body announced at 10 MB of which only the first kilobyte is sent; the rest never comes. */
    const upload = (path: string) => {
      const request = http.request(`${suite.app.baseUrl}/api/v1${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${attacker.accessToken}`,
          'content-type': 'application/json',
          'content-length': String(10 * 1024 * 1024),
        },
      });
      request.on('error', () => undefined);
      const status = new Promise<number>((resolve) => request.on('response', (answer) => resolve(answer.statusCode ?? 0)));
      request.write(`{"items": [${' '.repeat(1024)}`);
      return { request, status };
    };
    const uploads = [upload('/substrates/batch'), upload('/substrates/batch')];
    try {
      // The two uploads under way hold the customer's two places while their bodies come in.
      await waitFor(async () => (await suite.app.deps.leases.count(placeName('bulk-writes', attacker.customerId))) === 2, 15_000);
      // Each bulk route answers with 9.99 MB of its body unsent: nothing waited for it to be read.
      for (const path of ['/substrates/batch', '/jobs/bulk', '/batches']) {
        const extra = upload(path);
        uploads.push(extra);
        expect(await extra.status, path).toBe(429);
      }
      // Another customer's bulk is served meanwhile.
      const served = await bulk(victim);
      expect(served.status, served.text).toBe(202);
    } finally {
      for (const { request } of uploads) request.destroy();
    }
    // The abandoned uploads give their places back.
    await waitFor(async () => (await suite.app.deps.leases.count(placeName('bulk-writes', attacker.customerId))) === 0, 10_000);
  });
});
