import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createApp } from '../../api/app.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestLogRecorder } from '../../db/request-log-recorder.js';
import type { NewRequestLog } from '../../db/repositories/request-logs.js';
import { expectProblem } from '../auth/expect-problem.js';
import { customerIdOf, ingest, usageLines } from '../billing/back-office-fixtures.js';
import { loginAdmin, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { outOfRangeTimes } from '../helpers/out-of-range-times.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let adminToken: string;
let alice: TestUser;
let aliceId: string;

beforeAll(async () => {
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false' });
  request = httpClient(app.baseUrl);
  adminToken = await loginAdmin(request);
  alice = await registerUser(request);
  aliceId = await customerIdOf(request, alice.accessToken);
});

afterAll(async () => {
  await app?.close();
});

const row = (overrides: Partial<NewRequestLog> = {}): NewRequestLog => ({
  timestamp: new Date(),
  customerId: aliceId,
  serviceType: 'compute',
  method: 'GET',
  statusCode: 200,
  bytesOut: 1,
  ...overrides,
});

describe('request-log recorder', () => {
  it('records every authenticated call with its customer, service, method, status and body bytes, and no anonymous call', async () => {
    await app.deps.requestLog.flush();
    const [before] = await app.sql<{ id: string }>(`select coalesce(max(id), 0)::text as id from request_logs`);
    const balance = await request('GET', '/api/v1/billing/balance', { token: alice.accessToken });
    const missing = await request('GET', '/api/v1/jobs/not-a-uuid', { token: alice.accessToken });
    await request('GET', '/api/v1/health');
    await request('GET', '/api/v1/billing/balance', { token: 'sk_live_forged' });
    await app.deps.requestLog.flush();
    const rows = await app.sql(
      `select customer_id, service_type, method, status_code, bytes_out::int from request_logs where id > $1 order by id`,
      [before!.id],
    );
    expect(rows).toEqual([
      { customer_id: aliceId, service_type: 'compute', method: 'GET', status_code: 200, bytes_out: Buffer.byteLength(balance.text) },
      { customer_id: aliceId, service_type: 'compute', method: 'GET', status_code: 400, bytes_out: Buffer.byteLength(missing.text) },
    ]);
  });

  it('writes on its own within the flush interval, without a flush call', async () => {
    const [before] = await app.sql<{ n: string }>(`select count(*) as n from request_logs where customer_id = $1`, [aliceId]);
    await request('GET', '/api/v1/services', { token: alice.accessToken });
    await waitFor(async () => {
      const [after] = await app.sql<{ n: string }>(`select count(*) as n from request_logs where customer_id = $1`, [aliceId]);
      return Number(after!.n) > Number(before!.n);
    });
  });

  it('a failing flush never fails a request and keeps the rows for the next flush', async () => {
    let failing = true;
    const written: NewRequestLog[] = [];
    const recorder = new RequestLogRecorder(app.deps.orm.em.fork(), pino({ level: 'silent' }), {
      write: async (rows) => {
        if (failing) throw new Error('database down');
        written.push(...rows);
      },
    });
    for (let i = 0; i < 3; i++) recorder.record(row());
    await recorder.flush();
    expect(recorder.stats).toMatchObject({ recorded: 3, written: 0, failedFlushes: 1 });
    expect(recorder.pending).toBe(3);
    failing = false;
    await recorder.flush();
    expect(written).toHaveLength(3);
    expect(recorder.pending).toBe(0);
  });

  it('keeps at most maxBuffer rows and counts what it drops', async () => {
    const recorder = new RequestLogRecorder(app.deps.orm.em.fork(), pino({ level: 'silent' }), {
      maxBuffer: 100,
      write: () => Promise.reject(new Error('down')),
    });
    for (let i = 0; i < 150; i++) recorder.record(row());
    expect(recorder.pending).toBe(100);
    expect(recorder.stats.dropped).toBe(50);
  });

  it('answers requests normally while every request-log write fails', async () => {
    const broken = new RequestLogRecorder(app.deps.orm.em.fork(), pino({ level: 'silent' }), {
      batchSize: 2,
      write: () => Promise.reject(new Error('database down')),
    });
    const server = createApp({ ...app.deps, requestLog: broken }).listen(0);
    await once(server, 'listening');
    try {
      const brokenRequest = httpClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      for (let i = 0; i < 5; i++)
        expect((await brokenRequest('GET', '/api/v1/billing/balance', { token: alice.accessToken })).status).toBe(200);
      await broken.flush();
      expect(broken.stats.failedFlushes).toBeGreaterThan(0);
      expect(broken.pending).toBe(5);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('an entry with copies is that many rows: in the table, in pending, and in what a full buffer drops', async () => {
    const recorder = new RequestLogRecorder(app.deps.orm.em.fork(), pino({ level: 'silent' }), { maxBuffer: 1000 });
    const [before] = await app.sql<{ id: string }>(`select coalesce(max(id), 0)::text as id from request_logs`);
    recorder.record(row({ method: 'PATCH', bytesOut: 7 }));
    recorder.record(row({ method: 'PATCH', bytesOut: 0, copies: 699 }));
    expect(recorder.pending).toBe(700);
    // 700 + 301 rows would pass maxBuffer: the entry is dropped whole, and counted as 301.
    recorder.record(row({ method: 'PATCH', copies: 301 }));
    expect(recorder.stats).toMatchObject({ recorded: 700, dropped: 301 });
    await recorder.close();
    const rows = await app.sql<{ bytes_out: number; n: number }>(
      `select bytes_out::int, count(*)::int as n from request_logs where id > $1 and customer_id = $2 and method = 'PATCH' group by bytes_out order by bytes_out`,
      [before!.id, aliceId],
    );
    expect(rows).toEqual([
      { bytes_out: 0, n: 699 },
      { bytes_out: 7, n: 1 },
    ]);
    expect(recorder.stats.written).toBe(700);
  });

  it('writes in bulk: 2,000 rows in a handful of inserts', async () => {
    const inserts: number[] = [];
    const recorder = new RequestLogRecorder(app.deps.orm.em.fork(), pino({ level: 'silent' }), {
      batchSize: 500,
      write: async (rows) => void inserts.push(rows.length),
    });
    for (let i = 0; i < 2000; i++) recorder.record(row());
    await recorder.close();
    expect(inserts).toEqual([500, 500, 500, 500]);
  });
});

describe('request log: calls with valid credentials that end before their route authenticates them', () => {
  /** The rows written since `before` (a request_logs id), once `count` of them are there. */
  async function rowsSince(before: string, count: number) {
    return waitFor(async () => {
      await app.deps.requestLog.flush();
      const rows = await app.sql<{ customer_id: string; service_type: string; method: string; status_code: number }>(
        `select customer_id, service_type, method, status_code from request_logs where id > $1 order by id`,
        [before],
      );
      return rows.length >= count && rows;
    });
  }

  async function lastRowId(): Promise<string> {
    await app.deps.requestLog.flush();
    const [last] = await app.sql<{ id: string }>(`select coalesce(max(id), 0)::text as id from request_logs`);
    return last!.id;
  }

  it('records a 400 for malformed JSON, 415 for a non-JSON body, 413 past 1 MiB and 404 for an unknown path, against the caller', async () => {
    const before = await lastRowId();
    const token = alice.accessToken;
    const malformed = await request('POST', '/api/v1/jobs', { token, rawBody: '{"type":' });
    const notJson = await request('POST', '/api/v1/jobs', { token, rawBody: 'hello', headers: { 'content-type': 'text/plain' } });
    const tooLarge = await request('POST', '/api/v1/jobs', { token, body: { type: 'invoke', payload: { pad: 'x'.repeat(1_100_000) } } });
    const unknown = await request('GET', '/api/v1/nope', { token });
    expect([malformed.status, notJson.status, tooLarge.status, unknown.status]).toEqual([400, 415, 413, 404]);
    const compute = { customer_id: aliceId, service_type: 'compute' };
    expect(await rowsSince(before, 4)).toEqual([
      { ...compute, method: 'POST', status_code: 400 },
      { ...compute, method: 'POST', status_code: 415 },
      { ...compute, method: 'POST', status_code: 413 },
      { ...compute, method: 'GET', status_code: 404 },
    ]);
  });

  it("attributes an API key's failed call to the key's own service type, from its first use", async () => {
    const created = await request('POST', '/api/v1/api-keys', { token: alice.accessToken, body: { name: 'edge', service_type: 'seal' } });
    expect(created.status, created.text).toBe(201);
    const before = await lastRowId();
    expect((await request('GET', '/api/v1/nope', { token: created.body.key })).status).toBe(404);
    expect((await request('POST', '/api/v1/jobs', { token: created.body.key, rawBody: '[' })).status).toBe(400);
    expect(await rowsSince(before, 2)).toEqual([
      { customer_id: aliceId, service_type: 'seal', method: 'GET', status_code: 404 },
      { customer_id: aliceId, service_type: 'seal', method: 'POST', status_code: 400 },
    ]);
  });

  it('records a 403 tos-required against the caller, on an ordinary and on a large-body route', async () => {
    const dora = await registerUser(request);
    const doraId = await customerIdOf(request, dora.accessToken);
    await app.sql('delete from tos_acceptances where user_id in (select id from users where customer_id = $1)', [doraId]);
    await app.deps.principals.invalidateCustomer(doraId);
    const before = await lastRowId();
    expectProblem(await request('GET', '/api/v1/jobs', { token: dora.accessToken }), 403, 'tos-required');
    expectProblem(await request('POST', '/api/v1/jobs/bulk', { token: dora.accessToken, body: { jobs: [] } }), 403, 'tos-required');
    expect(await rowsSince(before, 2)).toEqual([
      { customer_id: doraId, service_type: 'compute', method: 'GET', status_code: 403 },
      { customer_id: doraId, service_type: 'compute', method: 'POST', status_code: 403 },
    ]);
  });

  it('records nothing for invalid credentials, and nothing for the probes whatever the credentials', async () => {
    const before = await lastRowId();
    const forgedJwt = `${alice.accessToken.slice(0, -4)}AAAA`;
    for (const token of ['garbage', forgedJwt, `sk_live_${'A'.repeat(43)}`]) {
      expect((await request('POST', '/api/v1/jobs', { token, rawBody: '{"type":' })).status).toBe(400);
      expect((await request('GET', '/api/v1/nope', { token })).status).toBe(404);
    }
    expect((await request('GET', '/api/v1/health', { token: alice.accessToken })).status).toBe(200);
    // A last call that is recorded: the rows are read once its row is there.
    await request('GET', '/api/v1/nope', { token: alice.accessToken });
    expect(await rowsSince(before, 1)).toEqual([{ customer_id: aliceId, service_type: 'compute', method: 'GET', status_code: 404 }]);
  });
});

describe('POST /admin/usage/ingest', () => {
  const line = (overrides: Record<string, unknown> = {}) => ({
    timestamp: '2026-01-05T10:15:00Z',
    customer_id: aliceId,
    service_type: 'seal',
    method: 'GET',
    status_code: 200,
    bytes_out: 512,
    ...overrides,
  });

  it('stores the valid lines and reports each rejected line by number with its reason', async () => {
    const [before] = await app.sql<{ n: string }>(`select count(*) as n from request_logs where service_type = 'seal'`);
    const response = await ingest(request, adminToken, [
      ...usageLines(3, line()),
      '{not json',
      JSON.stringify(line({ service_type: 'teleport' })),
      JSON.stringify(line({ customer_id: '0190f0f0-0000-7000-8000-000000000000' })),
      JSON.stringify(line({ extra: 1 })),
      JSON.stringify(line({ status_code: 99, bytes_out: -1 })),
      JSON.stringify(line({ timestamp: new Date(Date.now() + 3600_000).toISOString() })),
      '',
      JSON.stringify(line({ method: 'POST', status_code: 201 })),
    ]);
    expect(response.status, response.text).toBe(200);
    expect(response.body.accepted).toBe(4);
    expect(response.body.rejected_count).toBe(6);
    expect(response.body.rejected.map((r: { line: number }) => r.line)).toEqual([4, 5, 6, 7, 8, 9]);
    const reasons = response.body.rejected.map((r: { error: string }) => r.error);
    expect(reasons[0]).toMatch(/not valid JSON/);
    expect(reasons[1]).toMatch(/service_type/);
    expect(reasons[2]).toMatch(/no customer/);
    expect(reasons[3]).toMatch(/unknown field extra/);
    expect(reasons[4]).toMatch(/status_code.*bytes_out/);
    expect(reasons[5]).toMatch(/future/);
    const [after] = await app.sql<{ n: string }>(`select count(*) as n from request_logs where service_type = 'seal'`);
    expect(Number(after!.n) - Number(before!.n)).toBe(4);
  });

  it('rejects a line timestamped outside years 0001–9999 by its number, naming timestamp, and stores the others', async () => {
    const response = await ingest(request, adminToken, [
      JSON.stringify(line()),
      ...outOfRangeTimes.map((timestamp) => JSON.stringify(line({ timestamp }))),
    ]);
    expect(response.status, response.text).toBe(200);
    expect(response.body.accepted).toBe(1);
    expect(response.body.rejected.map((r: { line: number }) => r.line)).toEqual(outOfRangeTimes.map((_, i) => i + 2));
    for (const rejected of response.body.rejected) expect(rejected.error).toMatch(/^timestamp: /);
  });

  it('names at most 10 unknown keys of a line, each cut to 128 characters, and counts the rest', async () => {
    const flooded: Record<string, unknown> = line();
    flooded['x'.repeat(100_000)] = 1;
    for (let i = 0; i < 50_000; i++) flooded[`k${i}`] = 0;
    const response = await ingest(request, adminToken, [JSON.stringify(line()), JSON.stringify(flooded)]);
    expect(response.status, response.text.slice(0, 500)).toBe(200);
    expect(response.body.rejected).toEqual([
      { line: 2, error: `unknown fields ${'x'.repeat(128)}…, ${Array.from({ length: 9 }, (_, i) => `k${i}`).join(', ')} and 49,991 more` },
    ]);
    expect(response.text.length).toBeLessThan(2_000);
  });

  it('answers 400 when no line is valid, storing nothing', async () => {
    const response = await ingest(request, adminToken, ['[]', JSON.stringify(line({ service_type: 'nope' }))]);
    expectProblem(response, 400, 'validation', ['body.line.1', 'body.line.2']);
    expect(response.body.rejected).toHaveLength(2);
    const empty = await ingest(request, adminToken, ['']);
    expectProblem(empty, 400, 'validation', ['body']);
  });

  it('takes the other names NDJSON goes by (application/ndjson, application/jsonl)', async () => {
    for (const contentType of ['application/ndjson', 'application/jsonl']) {
      const response = await request('POST', '/api/v1/admin/usage/ingest', {
        token: adminToken,
        rawBody: `${JSON.stringify(line())}\n`,
        headers: { 'content-type': contentType },
      });
      expect(response.status, `${contentType}: ${response.text}`).toBe(200);
      expect(response.body.accepted).toBe(1);
    }
  });

  it('refuses a body that is not NDJSON with 415 naming the header and the expected type, as the JSON routes do', async () => {
    const response = await request('POST', '/api/v1/admin/usage/ingest', { token: adminToken, body: line() });
    expectProblem(response, 415, 'unsupported-media-type', ['header.content-type']);
    expect(response.body.errors[0].message).toMatch(/application\/x-ndjson/);
  });

  it('is for administrators only: a user gets 403', async () => {
    const response = await ingest(request, alice.accessToken, [line()]);
    expectProblem(response, 403, 'forbidden');
  });

  it('takes bodies over 1 MiB (up to 16 MiB)', async () => {
    const lines = usageLines(8000, line({ bytes_out: 123456789 }));
    const response = await ingest(request, adminToken, lines);
    expect(response.status, response.text.slice(0, 200)).toBe(200);
    expect(response.body.accepted).toBe(8000);
  });

  it('answers other requests while it reads a body of 200,000 junk lines, and lists the first 1,000 rejections of all', async () => {
    const body = [
      JSON.stringify(line()),
      ...Array.from({ length: 200_000 }, () => 'x'),
      JSON.stringify(line({ customer_id: randomUUID() })),
    ];
    let ingestAnswered = false;
    const ingesting = ingest(request, adminToken, body).finally(() => (ingestAnswered = true));
    let healthWhileIngesting = 0;
    while (!ingestAnswered) {
      const health = await fetch(`${app.baseUrl}/api/v1/health`);
      await health.text();
      if (!ingestAnswered && health.status === 200) healthWhileIngesting++;
    }
    const response = await ingesting;
    expect(response.status, response.text.slice(0, 200)).toBe(200);
    expect(response.body).toMatchObject({ accepted: 1, rejected_count: 200_001 });
    expect(response.body.rejected).toHaveLength(1000);
    expect(response.body.rejected[0]).toEqual({ line: 2, error: 'not valid JSON' });
    expect(response.body.rejected.at(-1)).toEqual({ line: 1001, error: 'not valid JSON' });
    // Parsed in one go, the body held the event loop and /health waited until the parse ended (8 answers in all; now ~200).
    expect(healthWhileIngesting).toBeGreaterThan(50);
  });
});

describe('GET /admin/customers', () => {
  it('lists customers with balance, spend and services, cursor-paginated, for admins only', async () => {
    await registerUser(request);
    const first = await request('GET', '/api/v1/admin/customers?limit=2', { token: adminToken });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.items[0]).toMatchObject({
      balance_usd_cents: 0,
      current_month_charged_usd_cents: 0,
      suspended_reason: null,
      services: [{ service_type: 'compute', tier: 'starter', enabled: true }],
    });
    const second = await request('GET', `/api/v1/admin/customers?limit=2&cursor=${first.body.next_cursor}`, { token: adminToken });
    expect(second.body.items.length).toBeGreaterThanOrEqual(1);
    const ids = [...first.body.items, ...second.body.items].map((c: { id: string }) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(aliceId);
    expectProblem(await request('GET', '/api/v1/admin/customers', { token: alice.accessToken }), 403, 'forbidden');
    expectProblem(await request('GET', '/api/v1/admin/customers?limit=0', { token: adminToken }), 400, 'validation', ['query.limit']);
  });
});
