import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schedulerIdFor } from '../../queue/schedules/user-schedulers.js';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createTenantResources, type TenantResources } from '../helpers/tenant-resources.js';
import { Receiver } from '../webhooks/receiver.js';

/** Tenant offboarding (SPEC §9, issue 18 item 3): export one customer's data, then delete it keeping the billing evidence. */
// Steps of 3 rows, so every purge loop crosses step boundaries (a batch's items, the request logs, the jobs).
// A delivery attempt that fails on a loaded machine is tried again within seconds, not after the default 30 s.
const suite = useTestApp({ workers: true, users: 3, env: { RETENTION_STEP_ROWS: '3', WEBHOOK_RETRY_BASE_MS: '500' } });
let receiver: Receiver;
const tokens = { a: '', b: '', c: '', admin: '' };
let a: TenantResources;
let b: TenantResources;
let customerC = '';
/** An hour well in the past, so metering and billing close it. */
const usageHour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000).toISOString();

/** Edge requests per customer: at pro prices (0.008 ¢ each) enough for a charge of a few cents. */
const edgeRequests = 500;

const admin = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  suite.request(method, `/api/v1${path}`, { token: tokens.admin, body, headers });

/** GET the export with fetch (the suite's client would parse NDJSON as one JSON document). */
async function exportOf(customerId: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${suite.app.baseUrl}/api/v1/admin/customers/${customerId}/export`, {
    headers: { authorization: `Bearer ${tokens.admin}`, ...headers },
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function runAsAdmin(type: string): Promise<void> {
  const response = await admin('POST', '/jobs', { type, payload: {} }, { prefer: 'wait=25' });
  expect(response.body.state, response.text).toBe('completed');
}

/** Rows of each table that hold the customer's id. */
async function rowsOf(customerId: string): Promise<Record<string, number>> {
  const tables = [
    'jobs',
    'job_idempotency_keys',
    'substrates',
    'relationships',
    'schedules',
    'webhook_endpoints',
    'webhook_deliveries',
    'api_keys',
    'request_logs',
    'usage_records',
    'billing_charges',
    'escrow_transactions',
    'users',
    'customers',
  ];
  const [row] = await suite.app.sql<Record<string, number>>(
    `select ${tables.map((t) => `(select count(*)::int from ${t} where ${t === 'customers' ? 'id' : 'customer_id'} = $1) as ${t}`).join(', ')}`,
    [customerId],
  );
  return row!;
}

const batchItemsOf = async (batchId: string) =>
  (await suite.app.sql<{ n: number }>('select count(*)::int as n from batch_items where batch_id = $1', [batchId]))[0]!.n;

beforeAll(async () => {
  receiver = await Receiver.start();
  tokens.admin = await loginAdmin(suite.request);
  const [ua, ub, uc] = suite.users as [(typeof suite.users)[number], (typeof suite.users)[number], (typeof suite.users)[number]];
  tokens.a = ua.accessToken;
  tokens.b = ub.accessToken;
  tokens.c = uc.accessToken;
  [a, b] = await Promise.all([
    createTenantResources(suite.request, tokens.a, { webhookUrl: receiver.url('/tenant-a'), label: 'tenant-a' }),
    createTenantResources(suite.request, tokens.b, { webhookUrl: receiver.url('/tenant-b'), label: 'tenant-b' }),
  ]);
  customerC = (await suite.request('GET', '/api/v1/auth/me', { token: tokens.c })).body.customer_id;
  for (const token of [tokens.a, tokens.b]) {
    const deposit = await suite.request('POST', '/api/v1/billing/deposits', { token, body: { amount_usd_cents: 5_000 } });
    expect(deposit.status, deposit.text).toBe(201);
    const upgrade = await suite.request('PUT', '/api/v1/services/compute', { token, body: { tier: 'pro', enabled: true } });
    expect(upgrade.status, upgrade.text).toBe(200);
  }
  // Edge traffic for A and B in a closed hour, metered and billed: usage records, charges and ledger entries.
  const lines = [a.customerId, b.customerId].flatMap((customerId) =>
    Array.from({ length: edgeRequests }, () =>
      JSON.stringify({
        timestamp: usageHour,
        customer_id: customerId,
        service_type: 'compute',
        method: 'POST',
        status_code: 200,
        bytes_out: 10,
      }),
    ),
  );
  const sent = await suite.request('POST', '/api/v1/admin/usage/ingest', {
    token: tokens.admin,
    rawBody: `${lines.join('\n')}\n`,
    headers: { 'content-type': 'application/x-ndjson' },
  });
  expect(sent.body.accepted, sent.text).toBe(2 * edgeRequests);
  await runAsAdmin('metering');
  await runAsAdmin('billing');
}, 180_000);

afterAll(async () => {
  await receiver?.close();
});

describe('who may offboard', () => {
  it('answers a customer 403 and a caller without a token 401, on both routes', async () => {
    for (const [method, path] of [
      ['GET', `/api/v1/admin/customers/${a.customerId}/export`],
      ['DELETE', `/api/v1/admin/customers/${a.customerId}`],
    ] as const) {
      expectProblem(await suite.request(method, path, { token: tokens.b }), 403, 'forbidden');
      expectProblem(await suite.request(method, path), 401, 'unauthorized');
    }
    expect((await rowsOf(a.customerId)).jobs).toBeGreaterThan(0);
  });

  it('answers 400 naming params.id for a malformed id, and 404 for a customer that does not exist', async () => {
    for (const method of ['GET', 'DELETE']) {
      const suffix = method === 'GET' ? '/export' : '';
      expectProblem(await admin(method, `/admin/customers/not-a-uuid${suffix}`), 400, 'validation', ['params.id']);
      expectProblem(await admin(method, `/admin/customers/0192f1c0-1b2c-7d3e-8f40-5a6b7c8d9e99${suffix}`), 404, 'not-found');
    }
    expectProblem(await admin('GET', `/admin/customers/${customerC}/export?bogus=1`), 400, 'validation', ['query.bogus']);
  });
});

describe('GET /admin/customers/:id/export', () => {
  it("streams exactly the customer's rows as NDJSON, header counts matching, secrets left out, and audits it", async () => {
    const answer = await exportOf(a.customerId);
    expect(answer.status, answer.text.slice(0, 300)).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(answer.headers.get('content-encoding')).toBe('gzip'); // fetch asks for gzip and undoes it
    expect(answer.headers.get('content-disposition')).toContain(`customer-${a.customerId}-`);
    const lines = answer.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown> & { kind: string });
    const [header, ...rest] = lines;
    const end = rest.pop();
    expect(header).toMatchObject({ kind: 'header', format: 'chrysalis.customer-export', customer: { id: a.customerId } });
    // The ledger's balance, as GET /billing/balance shows it (the customers row's own column stays 0).
    const balance = await suite.request('GET', '/api/v1/billing/balance', { token: tokens.a });
    expect((header!.customer as { balance_usd_cents: number }).balance_usd_cents).toBe(balance.body.balance_usd_cents);
    expect(balance.body.balance_usd_cents).toBeGreaterThan(0);
    expect(end).toEqual({ kind: 'end', rows: rest.length });
    const byKind: Record<string, Array<Record<string, unknown>>> = {};
    for (const row of rest) (byKind[row.kind] ??= []).push(row);
    const counts = header!.counts as Record<string, number>;
    for (const [kind, count] of Object.entries(counts)) expect(byKind[kind]?.length ?? 0, kind).toBe(count);

    // Every row that names a customer names A; none of B's resources appear at all.
    for (const row of rest) if ('customer_id' in row) expect(row.customer_id, row.kind).toBe(a.customerId);
    for (const id of [b.customerId, b.jobId, b.batchId, b.substrateId, b.webhookId, b.apiKeyId, b.scheduleName]) {
      expect(answer.text).not.toContain(id);
    }
    const ids = (kind: string, key = 'id') => (byKind[kind] ?? []).map((row) => row[key]);
    expect(ids('job')).toEqual(expect.arrayContaining([a.jobId, a.batchId]));
    expect(byKind.batch_item?.length).toBe(await batchItemsOf(a.batchId));
    expect(ids('substrate')).toEqual(expect.arrayContaining([a.substrateId, a.otherSubstrateId]));
    expect(ids('relationship')).toEqual([a.relationshipId]);
    expect(ids('schedule', 'name')).toEqual([a.scheduleName]);
    expect(ids('webhook_endpoint')).toEqual([a.webhookId]);
    expect(ids('api_key')).toEqual([a.apiKeyId]);
    expect(counts.request_log).toBeGreaterThanOrEqual(edgeRequests); // the edge's, and A's own calls to the API
    for (const kind of ['usage_record', 'charge', 'ledger_transaction', 'ledger_entry', 'webhook_delivery', 'user'])
      expect(counts[kind], kind).toBeGreaterThan(0);
    // No secrets: key hashes, encrypted keys, the key itself, signing secrets, password hashes.
    expect(answer.text).not.toContain(a.apiKey);
    expect(answer.text).not.toMatch(/key_hash|encrypted_key|encrypted_secret|password_hash/);
    // Nor an expression's text, which no endpoint returns (SPEC §5).
    for (const substrate of byKind.substrate ?? []) expect(Object.keys(substrate)).not.toContain('expression');

    const audit = await admin('GET', `/admin/audit?customer_id=${a.customerId}&action=customer.export`);
    expect(audit.body.items[0]).toMatchObject({ action: 'customer.export', details: { counts: { job: counts.job } } });
  });

  it('answers plain NDJSON to a client that does not take gzip', async () => {
    const answer = await exportOf(b.customerId, { 'accept-encoding': 'identity' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-encoding')).toBeNull();
    const lines = answer.text.trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'header', customer: { id: b.customerId } });
    expect(JSON.parse(lines.at(-1)!)).toEqual({ kind: 'end', rows: lines.length - 2 });
    expect(answer.text).not.toContain(a.customerId);
  });
});

describe('a large export', () => {
  it('runs one at a time per API process (429 with Retry-After), waits for a slow reader, and frees its slot when the reader goes', async () => {
    // 20,000 jobs of about 1 KB: far more than the socket buffers hold, so the export waits on its reader.
    const user = await registerUser(suite.request);
    const customer = (await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
    await suite.app.sql(
      `insert into jobs (id, customer_id, type, state, payload, created_at, finished_at)
       select gen_random_uuid(), $1, 'invoke', 'completed', jsonb_build_object('pad', repeat('x', 1000), 'n', g), now(), now()
         from generate_series(1, 20000) g`,
      [customer],
    );
    const reader = new AbortController();
    const first = await fetch(`${suite.app.baseUrl}/api/v1/admin/customers/${customer}/export`, {
      headers: { authorization: `Bearer ${tokens.admin}`, 'accept-encoding': 'identity' },
      signal: reader.signal,
    });
    expect(first.status).toBe(200);
    const stream = first.body!.getReader();
    const { value } = await stream.read(); // the header, then nothing more is read
    expect(new TextDecoder().decode(value).split('\n')[0]).toContain('"kind":"header"');

    const second = await exportOf(b.customerId);
    expect(second.status, second.text.slice(0, 200)).toBe(429);
    expect(second.headers.get('retry-after')).toBe('30');
    expect(JSON.parse(second.text)).toMatchObject({ status: 429, type: expect.stringMatching(/rate-limited$/) });

    reader.abort();
    await stream.cancel().catch(() => undefined);
    // The server notices the reader has gone, rolls the snapshot back and frees the slot.
    const third = await waitFor(async () => {
      const answer = await exportOf(b.customerId);
      return answer.status === 200 ? answer : null;
    });
    expect(third.text.trimEnd().split('\n').at(-1)).toMatch(/^\{"kind":"end"/);
    await suite.app.sql('delete from jobs where customer_id = $1', [customer]);
  }, 60_000);
});

describe('DELETE /admin/customers/:id', () => {
  it('refuses with 409 while the customer has unfinished jobs, and deletes once they are cancelled', async () => {
    const substrate = await suite.request('POST', '/api/v1/substrates', {
      token: tokens.c,
      body: { expression_type: 'expression', expression: 'x + 1' },
    });
    const job = await suite.request('POST', '/api/v1/jobs', {
      token: tokens.c,
      body: { type: 'invoke', payload: { substrate_id: substrate.body.substrate_id, parameters: { x: 1 } }, delay_ms: 3_600_000 },
    });
    expect(job.status, job.text).toBe(202);
    const refused = await admin('DELETE', `/admin/customers/${customerC}`);
    expectProblem(refused, 409, 'conflict');
    expect(refused.body.unfinished).toEqual({ queued: 0, delayed: 1, active: 0 });
    // Nothing happened: C still works.
    expect((await suite.request('GET', `/api/v1/jobs/${job.body.id}`, { token: tokens.c })).status).toBe(200);

    const cancelled = await admin('POST', '/admin/jobs/cancel', { customer_id: customerC });
    expect(cancelled.body.cancelled, cancelled.text).toBe(1);
    const deleted = await admin('DELETE', `/admin/customers/${customerC}`);
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.body.deleted).toMatchObject({ jobs: 1, substrates: 1 });
    expectProblem(await suite.request('GET', '/api/v1/jobs', { token: tokens.c }), 401, 'unauthorized');
  });

  it("removes the customer's data in steps, keeps the billing evidence, answers its tokens 401 and leaves another customer alone", async () => {
    // Both of A's credentials work until the delete.
    expect((await suite.request('GET', '/api/v1/jobs', { token: tokens.a })).status).toBe(200);
    expect((await suite.request('GET', '/api/v1/jobs', { token: a.apiKey })).status).toBe(200);
    await suite.app.deps.requestLog.flush(); // the request logs of those calls, so the counts below hold them
    // A finished job submitted with an idempotency key: its key goes with it.
    const keyedJob = await suite.app.sql<{ id: string }>(
      `select id from jobs where customer_id = $1 and state not in ('queued', 'delayed', 'active') order by id limit 1`,
      [a.customerId],
    );
    await suite.app.sql(`insert into job_idempotency_keys (customer_id, idempotency_key, job_id) values ($1, 'offboarding-key', $2)`, [
      a.customerId,
      keyedJob[0]!.id,
    ]);
    const before = await rowsOf(a.customerId);
    expect(before.job_idempotency_keys).toBeGreaterThanOrEqual(1);
    const bBefore = await rowsOf(b.customerId);
    expect(before).toMatchObject({ usage_records: expect.any(Number), billing_charges: 1 });
    expect(before.escrow_transactions).toBeGreaterThanOrEqual(2); // the deposit and the charge
    const scheduler = () => suite.app.deps.scheduleTicks.getJobScheduler(schedulerIdFor(a.customerId, a.scheduleName));
    expect(await scheduler()).toBeTruthy();

    const deleted = await admin('DELETE', `/admin/customers/${a.customerId}`);
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.body).toMatchObject({
      customer_id: a.customerId,
      deleted_at: expect.any(String),
      cancelled_jobs: 0,
      deleted: { jobs: before.jobs, substrates: 2, relationships: 1, schedules: 1, webhook_endpoints: 1, api_keys: 1 },
      kept: { usage_records: before.usage_records, charges: 1, ledger_transactions: before.escrow_transactions },
    });
    // The billed hour's logs go; those of A's own calls in this hour wait for metering and billing.
    expect(deleted.body.deleted.request_logs).toBeGreaterThanOrEqual(edgeRequests);
    expect(deleted.body.deleted.request_logs + deleted.body.kept.request_logs).toBe(before.request_logs);
    expect(deleted.body.deleted.batch_items).toBeGreaterThan(0);

    // Tokens and keys answer 401 at once; the password no longer logs in.
    expectProblem(await suite.request('GET', '/api/v1/jobs', { token: tokens.a }), 401, 'unauthorized');
    expectProblem(await suite.request('GET', '/api/v1/jobs', { token: a.apiKey }), 401, 'unauthorized');
    const user = suite.users[0]!;
    expect((await suite.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: user.password } })).status).toBe(401);
    expect((await suite.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: user.refreshToken } })).status).toBe(401);
    expect(await scheduler()).toBeFalsy();

    expect(await rowsOf(a.customerId)).toEqual({
      ...before,
      jobs: 0,
      job_idempotency_keys: 0,
      substrates: 0,
      relationships: 0,
      schedules: 0,
      webhook_endpoints: 0,
      webhook_deliveries: 0,
      api_keys: 0,
      request_logs: deleted.body.kept.request_logs,
    });
    expect(await batchItemsOf(a.batchId)).toBe(0);
    const [tombstone] = await suite.app.sql<{ name: string; deleted_at: Date | null; email: string }>(
      'select c.name, c.deleted_at, u.email from customers c join users u on u.customer_id = c.id where c.id = $1',
      [a.customerId],
    );
    expect(tombstone).toMatchObject({ name: `deleted-${a.customerId}`, deleted_at: expect.any(Date) });
    expect(tombstone!.email).toMatch(/^deleted-.*@deleted\.invalid$/);
    expect(await suite.app.sql('select 1 from users where email = $1', [user.email])).toEqual([]);

    // B is untouched and still works.
    expect(await rowsOf(b.customerId)).toEqual(bBefore);
    expect((await suite.request('GET', `/api/v1/jobs/${b.jobId}`, { token: tokens.b })).status).toBe(200);
    expect((await suite.request('GET', `/api/v1/substrates/${b.substrateId}`, { token: b.apiKey })).status).toBe(200);

    const listed = (await admin('GET', '/admin/customers?limit=100')).body.items as Array<Record<string, unknown>>;
    expect(listed.find((row) => row.id === a.customerId)).toMatchObject({
      name: `deleted-${a.customerId}`,
      deleted_at: deleted.body.deleted_at,
    });
    expect(listed.find((row) => row.id === b.customerId)).toMatchObject({ deleted_at: null });

    const audit = await admin('GET', `/admin/audit?customer_id=${a.customerId}&action=customer.delete`);
    expect(audit.body.items[0]).toMatchObject({ action: 'customer.delete', details: { deleted: { jobs: before.jobs } } });
  }, 60_000);

  it('answers a second delete of a deleted customer with 200 and nothing more to remove', async () => {
    const again = await admin('DELETE', `/admin/customers/${a.customerId}`);
    expect(again.status, again.text).toBe(200);
    expect(again.body.deleted).toMatchObject({ jobs: 0, substrates: 0, request_logs: 0 });
    expect(again.body.kept.charges).toBe(1);
  });

  it('answers 404 to a credit, a pause or a resume of a deleted customer, as to one that never existed; a live one still takes them', async () => {
    const ledgerBefore = await suite.app.sql<{ n: number }>('select count(*)::int as n from escrow_transactions where customer_id = $1', [
      a.customerId,
    ]);
    const credit = { amount_usd_cents: 100, reason: 'goodwill' };
    expectProblem(await admin('POST', `/admin/customers/${a.customerId}/credits`, credit), 404, 'not-found');
    expectProblem(await admin('POST', `/admin/customers/${a.customerId}/pause`), 404, 'not-found');
    expectProblem(await admin('POST', `/admin/customers/${a.customerId}/resume`), 404, 'not-found');
    const [customer] = await suite.app.sql<{ paused_at: Date | null }>('select paused_at from customers where id = $1', [a.customerId]);
    expect(customer!.paused_at).toBeNull();
    expect(
      await suite.app.sql<{ n: number }>('select count(*)::int as n from escrow_transactions where customer_id = $1', [a.customerId]),
    ).toEqual(ledgerBefore);

    const credited = await admin('POST', `/admin/customers/${b.customerId}/credits`, credit);
    expect(credited.status, credited.text).toBe(201);
    expect((await admin('POST', `/admin/customers/${b.customerId}/pause`)).body).toMatchObject({ customer_id: b.customerId, paused: true });
    expect((await admin('POST', `/admin/customers/${b.customerId}/resume`)).body).toMatchObject({
      customer_id: b.customerId,
      paused: false,
    });
  });

  it("refuses to delete an operator's own customer", async () => {
    const me = await suite.request('GET', '/api/v1/auth/me', { token: tokens.admin });
    expectProblem(await admin('DELETE', `/admin/customers/${me.body.customer_id}`), 409, 'conflict', ['params.id']);
    expect((await admin('GET', '/admin/audit')).status).toBe(200);
  });
});
