import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../api/openapi.js';
import { loginAdmin } from '../helpers/accounts.js';
import type { HttpResponse } from '../helpers/http.js';
import { apiOperations, exampleOf, fillPath, type ApiOperation } from '../helpers/openapi-operations.js';
import { rawClient, type RawResponse } from '../helpers/raw-client.js';
import { useTestApp } from '../helpers/suite.js';
import { createTenantResources } from '../helpers/tenant-resources.js';
import { Receiver } from '../webhooks/receiver.js';
import { fixtures, parameterPrefixes, type World } from './resource-fixtures.js';

/**
 * The tenant isolation matrix (issue 8 part 6). Customer A owns one of every resource, made through the
 * API; customer B tries every operation of the OpenAPI document whose path takes a parameter, with A's
 * ids: each must answer 404 (an admin route: 403 by role), the same as an id of nothing, and leave A's
 * resources as they were. B's collections never list A's ids, and B's usage, transactions and balance
 * show none of A's figures.
 * The operations come from the document and the ids from ./resource-fixtures.ts, so a new route joins
 * the matrix by itself, or fails the first test until its fixture is added.
 */
const document = buildOpenApiDocument();
const operations = apiOperations(document);
const parameterised = operations.filter((operation) => operation.pathParams.length > 0);
const collections = operations.filter((operation) => operation.method === 'GET' && operation.pathParams.length === 0);
/** A's usage is ingested into this hour, far from the hours B's own calls are metered into. */
const aUsageWindow = '2026-01-05T09:00:00.000Z';
const aUsageRequests = 4321;

const suite = useTestApp({ workers: true, users: 2 });
let receiver: Receiver;
let request: typeof suite.request;
let raw: ReturnType<typeof rawClient>;
let world: World;
const tokens = { a: '', b: '', bKey: '', admin: '' };
/** Strings that only A's data contains (ids, names, the key prefix, the webhook URL, transaction digests). */
let aMarkers: string[] = [];
const counts = { operationIds: 0, checks: 0, listReads: 0 };

async function ok(response: Promise<HttpResponse>, what: string, statuses = [200, 201]): Promise<HttpResponse> {
  const answered = await response;
  if (!statuses.includes(answered.status)) throw new Error(`${what}: ${answered.status} ${answered.text}`);
  return answered;
}

/** Runs a back-office job the way an admin does: POST /jobs, waiting until it has finished. */
async function runAsAdmin(type: string): Promise<string> {
  const response = await ok(
    request('POST', '/api/v1/jobs', { token: tokens.admin, headers: { prefer: 'wait=25' }, body: { type, payload: {} } }),
    `${type} job`,
    [200],
  );
  expect(response.body.state, JSON.stringify(response.body)).toBe('completed');
  return response.body.id;
}

/** Every page of a list (or the one answer of a non-list). */
async function readAll(token: string, path: string): Promise<HttpResponse[]> {
  const pages: HttpResponse[] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const page: HttpResponse = await request('GET', cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path, { token });
    pages.push(page);
    cursor =
      typeof page.body === 'object' && page.body !== null ? ((page.body as { next_cursor?: string | null }).next_cursor ?? null) : null;
  } while (cursor && pages.length < 50);
  return pages;
}

/** Everything A can read about A's own resources, as A reads it. Compared before and after B's attempts. */
async function snapshotOfA(): Promise<Record<string, unknown>> {
  const { a } = world;
  const paths = [
    '/api/v1/jobs',
    `/api/v1/jobs/${a.jobId}`,
    `/api/v1/jobs/${a.batchId}`,
    '/api/v1/substrates',
    `/api/v1/substrates/${a.substrateId}`,
    `/api/v1/substrates/${a.otherSubstrateId}`,
    `/api/v1/batches/${a.batchId}`,
    `/api/v1/batches/${a.batchId}/items`,
    `/api/v1/relationships/${a.relationshipId}`,
    `/api/v1/relationships/outgoing/${a.substrateId}`,
    `/api/v1/relationships/incoming/${a.otherSubstrateId}`,
    '/api/v1/relationships/stats',
    '/api/v1/schedules',
    '/api/v1/webhooks',
    `/api/v1/webhooks/${a.webhookId}/deliveries`,
    '/api/v1/webhooks/secret',
    '/api/v1/api-keys',
    '/api/v1/services',
    '/api/v1/billing/balance',
    '/api/v1/billing/transactions',
    '/api/v1/billing/usage',
  ];
  const snapshot: Record<string, unknown> = {};
  for (const path of paths) {
    const pages = await readAll(tokens.a, path);
    for (const page of pages) expect(page.status, `A reads ${path}: ${page.text}`).toBe(200);
    snapshot[path] = pages.map((page) => page.body);
  }
  // A's key still works (B's DELETE or rotate would have revoked it).
  snapshot['api key works'] = (await request('GET', '/api/v1/auth/me', { token: a.apiKey })).status;
  return snapshot;
}

function leakedMarkers(text: string, allowed: string[] = []): string[] {
  return aMarkers.filter((marker) => !allowed.includes(marker) && text.includes(marker));
}

function problemType(response: RawResponse): string | null {
  try {
    return (JSON.parse(response.text) as { type?: string }).type ?? null;
  } catch {
    return null;
  }
}

beforeAll(async () => {
  request = suite.request;
  receiver = await Receiver.start();
  // Short: an isolation bug on the event stream would hold the connection open instead of answering 404.
  raw = rawClient(suite.app.baseUrl, 5_000);
  tokens.admin = await loginAdmin(request);
  const [a, b] = suite.users as [(typeof suite.users)[number], (typeof suite.users)[number]];
  tokens.a = a.accessToken;
  tokens.b = b.accessToken;
  const [aResources, bResources] = await Promise.all([
    createTenantResources(request, tokens.a, { webhookUrl: receiver.url('/tenant-a'), label: 'tenant-a' }),
    createTenantResources(request, tokens.b, { webhookUrl: receiver.url('/tenant-b'), label: 'tenant-b' }),
  ]);
  tokens.bKey = bResources.apiKey;

  // Money and usage: A deposits and upgrades; the admin ingests A's edge traffic and runs metering and billing.
  await ok(request('POST', '/api/v1/billing/deposits', { token: tokens.a, body: { amount_usd_cents: 12_347 } }), 'deposit A');
  await ok(request('POST', '/api/v1/billing/deposits', { token: tokens.b, body: { amount_usd_cents: 777 } }), 'deposit B');
  await ok(request('PUT', '/api/v1/services/compute', { token: tokens.a, body: { tier: 'pro', enabled: true } }), 'upgrade A');
  const line = JSON.stringify({
    timestamp: aUsageWindow,
    customer_id: aResources.customerId,
    service_type: 'compute',
    method: 'POST',
    status_code: 200,
    bytes_out: 10,
  });
  const ingested = await ok(
    request('POST', '/api/v1/admin/usage/ingest', {
      token: tokens.admin,
      rawBody: `${`${line}\n`.repeat(aUsageRequests)}`,
      headers: { 'content-type': 'application/x-ndjson' },
    }),
    'ingest',
    [200],
  );
  expect(ingested.body.accepted).toBe(aUsageRequests);
  const adminJobId = await runAsAdmin('metering');
  await runAsAdmin('billing');
  world = { a: aResources, b: bResources, adminJobId };

  const aJobs = (await readAll(tokens.a, '/api/v1/jobs')).flatMap((page) => page.body.items as Array<{ id: string }>);
  const aTransactions = (await readAll(tokens.a, '/api/v1/billing/transactions')).flatMap(
    (page) => page.body.items as Array<{ id: string; tx_digest: string }>,
  );
  const aKeys = (await readAll(tokens.a, '/api/v1/api-keys')).flatMap((page) => page.body.items as Array<{ prefix: string }>);
  expect(aTransactions.map((t) => t.id).length, 'A has a deposit and a charge').toBeGreaterThanOrEqual(2);
  aMarkers = [
    ...Object.values(aResources).filter((value): value is string => typeof value === 'string' && value.length >= 8),
    a.email,
    '/tenant-a',
    adminJobId,
    ...aJobs.map((job) => job.id),
    ...aTransactions.flatMap((t) => [t.id, t.tx_digest]),
    ...aKeys.map((key) => key.prefix),
  ];
}, 180_000);

afterAll(async () => {
  console.log(
    `tenant isolation: ${counts.operationIds} (operation, id) cases over ${parameterised.length} parameterised operations, ${counts.checks} calls by B ` +
      `(access token and API key); ${counts.listReads} collection pages read by B, none with A's ids`,
  );
  raw?.close();
  await receiver?.close();
});

describe('tenant isolation matrix', () => {
  it('has a fixture for every parameterised operation in the OpenAPI document', () => {
    const missing = parameterised.flatMap((operation) =>
      Object.entries(parameterPrefixes(operation.path))
        .filter(([, prefix]) => !fixtures[prefix])
        .map(([name, prefix]) => `${operation.key}: {${name}} (add '${prefix}' to tests/isolation/resource-fixtures.ts)`),
    );
    expect(missing, missing.join('\n')).toEqual([]);
    expect(parameterised.length).toBeGreaterThan(25);
  });

  it("answers B's every call on A's ids with 404, as for an id of nothing, and leaves A's resources unchanged", async () => {
    const before = await snapshotOfA();
    const attackers = [
      { name: 'B (access token)', token: tokens.b, mustBe404: true },
      // An API key cannot manage keys at all (403 either way); for every other route it must answer 404 too.
      { name: 'B (API key)', token: tokens.bKey, mustBe404: false },
    ];
    const failures: string[] = [];
    for (const operation of parameterised) {
      const body = operation.body ? JSON.stringify(exampleOf(document, operation.body.schema)) : undefined;
      const send = (token: string, values: Record<string, string>) =>
        raw.send({
          method: operation.method,
          path: fillPath(operation.path, values),
          headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body } : {}),
        });
      for (const { values, reference, foreignIds, adminOnly } of casesFor(operation)) {
        counts.operationIds++;
        for (const attacker of attackers) {
          counts.checks++;
          const where = `${attacker.name} ${operation.method} ${fillPath(operation.path, values)}`;
          const [answer, nothing] = await Promise.all([
            send(attacker.token, values),
            reference ? send(attacker.token, reference) : Promise.resolve(null),
          ]);
          const leaked = leakedMarkers(answer.text, foreignIds);
          if (leaked.length > 0) failures.push(`${where} → ${answer.status} shows A's ${leaked.join(', ')}`);
          if (!nothing) continue; // a per-customer name: B acted on its own resource; A's is checked below
          const expected = adminOnly ? { status: 403, type: '/forbidden' } : { status: 404, type: '/not-found' };
          if ((attacker.mustBe404 || adminOnly) && (answer.status !== expected.status || !problemType(answer)?.endsWith(expected.type)))
            failures.push(`${where} → ${answer.status} ${answer.text.slice(0, 200)}`);
          if (answer.status < 300 || answer.status !== nothing.status || problemType(answer) !== problemType(nothing)) {
            failures.push(
              `${where} → ${answer.status} ${problemType(answer)}, but an id of nothing → ${nothing.status} ${problemType(nothing)}`,
            );
          }
        }
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
    expect(await snapshotOfA(), "A's resources after B's calls").toEqual(before);
  }, 120_000);

  it("never shows A's ids in B's collections", async () => {
    const leaks: string[] = [];
    for (const operation of collections) {
      for (const token of [tokens.b, tokens.bKey]) {
        for (const page of await readAll(token, fillPath(operation.path, {}))) {
          counts.listReads++;
          expect(page.status, `${operation.key}: ${page.text.slice(0, 200)}`).toBeLessThan(500);
          const leaked = leakedMarkers(page.text);
          if (leaked.length > 0) leaks.push(`${operation.key} shows B A's ${leaked.join(', ')}`);
        }
      }
    }
    expect(leaks, leaks.join('\n')).toEqual([]);
    expect(counts.listReads).toBeGreaterThanOrEqual(collections.length * 2);
  });

  it("shows B none of A's usage, transactions or balance", async () => {
    const aUsage = (await readAll(tokens.a, '/api/v1/billing/usage')).flatMap(
      (page) => page.body.items as Array<{ id: string; window_start: string; request_count: number }>,
    );
    expect(aUsage.find((record) => record.window_start === aUsageWindow)?.request_count, "A's ingested usage is there to be hidden").toBe(
      aUsageRequests,
    );
    const bUsage = (await readAll(tokens.b, '/api/v1/billing/usage')).flatMap(
      (page) => page.body.items as Array<{ id: string; window_start: string }>,
    );
    expect(bUsage.filter((record) => aUsage.some((mine) => mine.id === record.id) || record.window_start === aUsageWindow)).toEqual([]);

    const aBalance = (await request('GET', '/api/v1/billing/balance', { token: tokens.a })).body;
    const bBalance = (await request('GET', '/api/v1/billing/balance', { token: tokens.b })).body;
    expect(aBalance.current_month_charged_usd_cents + aBalance.balance_usd_cents, "A's deposit, split between balance and charges").toBe(
      12_347,
    );
    expect(bBalance.balance_usd_cents).toBeLessThanOrEqual(777);
    expect(bBalance.current_month_charged_usd_cents).toBeLessThan(aBalance.current_month_charged_usd_cents);

    const bTransactions = (await readAll(tokens.b, '/api/v1/billing/transactions')).flatMap(
      (page) => page.body.items as Array<{ type: string; amount_usd_cents: number }>,
    );
    expect(bTransactions.filter((t) => t.type === 'deposit').map((t) => t.amount_usd_cents)).toEqual([777]);

    const bServices = (await readAll(tokens.b, '/api/v1/services')).flatMap(
      (page) => page.body.items as Array<{ service_type: string; tier: string }>,
    );
    expect(bServices.find((service) => service.service_type === 'compute')?.tier, "A's upgrade is A's alone").toBe('starter');
  });

  it("refuses B's request bodies that name A's substrates", async () => {
    const { a, b } = world;
    for (const [source, target] of [
      [a.substrateId, b.substrateId],
      [b.substrateId, a.substrateId],
    ]) {
      const edge = await request('POST', '/api/v1/relationships', {
        token: tokens.b,
        body: { source_id: source, target_id: target, type: 'REFERENCE' },
      });
      expect(edge.status, edge.text).toBe(404);
    }
    const traversal = await request('POST', '/api/v1/relationships/traverse', {
      token: tokens.b,
      body: { start_substrate_id: a.substrateId },
    });
    expect(traversal.status, traversal.text).toBe(404);
    // POST /jobs checks the substrate at submit, like /substrates/:id/…: 404, nothing queued.
    const job = await request('POST', '/api/v1/jobs', {
      token: tokens.b,
      headers: { prefer: 'wait=20' },
      body: { type: 'invoke', payload: { substrate_id: a.substrateId } },
    });
    expect(job.status, job.text).toBe(404);
    // POST /jobs/bulk: one job on A's substrate refuses the whole request with 404, B's own job included.
    const jobsBefore = (await readAll(tokens.b, '/api/v1/jobs')).flatMap((page) => page.body.items as unknown[]).length;
    const bulk = await request('POST', '/api/v1/jobs/bulk', {
      token: tokens.b,
      body: {
        jobs: [
          { type: 'invoke', payload: { substrate_id: b.substrateId } },
          { type: 'invoke', payload: { substrate_id: a.substrateId } },
        ],
      },
    });
    expect(bulk.status, bulk.text).toBe(404);
    expect(bulk.body.errors).toEqual([expect.objectContaining({ field: 'jobs[1].payload.substrate_id' })]);
    expect(leakedMarkers(bulk.text, [a.substrateId])).toEqual([]);
    expect((await readAll(tokens.b, '/api/v1/jobs')).flatMap((page) => page.body.items as unknown[]).length).toBe(jobsBefore);
    const batch = await request('POST', '/api/v1/batches', {
      token: tokens.b,
      headers: { prefer: 'wait=20' },
      body: { invocations: [{ substrate_id: a.substrateId }] },
    });
    expect(batch.body.state, batch.text).toBe('completed');
    const items = await request('GET', `/api/v1/batches/${batch.body.id}/items`, { token: tokens.b });
    expect(items.body.items).toEqual([expect.objectContaining({ index: 0, state: 'failed' })]);
    expect(items.body.items[0].result).toBeUndefined();
  });
});

interface MatrixCase {
  values: Record<string, string>;
  /** The same call with the foreign value swapped for one naming nothing; null for per-customer names. */
  reference: Record<string, string> | null;
  /** The foreign ids in `values` (an answer may echo them: "job <id> not found"). */
  foreignIds: string[];
  /** An admin route: B is refused by role (403) instead of answered 404. */
  adminOnly: boolean;
}

/** Each foreign value in each parameter, the other parameters holding B's own values. */
function casesFor(operation: ApiOperation): MatrixCase[] {
  const prefixes = Object.entries(parameterPrefixes(operation.path)).map(([name, prefix]) => [name, fixtures[prefix]] as const);
  const named = prefixes.filter(([, fixture]) => fixture?.kind === 'per-customer name');
  if (named.length > 0) {
    return named.flatMap(([name, fixture]) =>
      fixture?.kind === 'per-customer name'
        ? fixture.names.map((value) => ({ values: { [name]: value }, reference: null, foreignIds: [], adminOnly: false }))
        : [],
    );
  }
  const own: Record<string, string> = {};
  for (const [name, fixture] of prefixes) if (fixture?.kind === 'owned') own[name] = fixture.own(world);
  return prefixes.flatMap(([name, fixture]) =>
    fixture?.kind === 'owned'
      ? fixture.foreign(world).map((id) => ({
          values: { ...own, [name]: id },
          reference: { ...own, [name]: fixture.nothing() },
          foreignIds: [id],
          adminOnly: fixture.adminOnly === true,
        }))
      : [],
  );
}
