import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../api/openapi.js';
import { loginAdmin } from '../helpers/accounts.js';
import { apiOperations, type ApiOperation } from '../helpers/openapi-operations.js';
import { rawClient, type RawResponse } from '../helpers/raw-client.js';
import { useTestApp } from '../helpers/suite.js';
import { createTenantResources, type TenantResources } from '../helpers/tenant-resources.js';
import { Receiver } from '../webhooks/receiver.js';
import { adminPageCases, adminPageEdgeCases } from './admin-page-cases.js';
import { caseCategories, edgeCases, type BadCase } from './bad-input-cases.js';

/**
 * Bad input everywhere (issue 8 part 5): every operation of the OpenAPI document gets malformed bodies,
 * query strings, headers and path ids, as the admin, as a user and with no credentials. Whatever comes in,
 * the answer is never a 5xx, every 4xx is an RFC 9457 problem whose `status` is the HTTP status, and the
 * server stays up. The operations come from the document, so a new route is fuzzed without touching this file.
 *
 * FUZZ_SEED=<n> replays a run (the seed is printed); FUZZ_RUNS=<x> multiplies the runs per case category.
 */
const document = buildOpenApiDocument();
const operations = apiOperations(document);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const runsFactor = Number(process.env.FUZZ_RUNS ?? 1);

const suite = useTestApp({ workers: true, users: 1 });
let receiver: Receiver;
let client: ReturnType<typeof rawClient>;
const callers: Array<{ name: 'admin' | 'user' | 'anonymous'; token: string | null; own: TenantResources | null }> = [];
const tally = { requests: 0, serverErrors: 0, byStatus: new Map<number, number>() };

beforeAll(async () => {
  const { app, request, users } = suite;
  const [user] = users as [(typeof users)[number]];
  receiver = await Receiver.start();
  client = rawClient(app.baseUrl);
  const adminToken = await loginAdmin(request);
  const [adminOwn, userOwn] = await Promise.all([
    createTenantResources(request, adminToken, { webhookUrl: receiver.url('/admin'), label: 'admin' }),
    createTenantResources(request, user.accessToken, { webhookUrl: receiver.url('/user'), label: 'user' }),
  ]);
  callers.push(
    { name: 'admin', token: adminToken, own: adminOwn },
    { name: 'user', token: user.accessToken, own: userOwn },
    { name: 'anonymous', token: null, own: null },
  );
});

afterAll(async () => {
  const statuses = [...tally.byStatus.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status}×${count}`)
    .join(' ');
  console.log(`bad-input fuzz: ${tally.requests} requests, ${tally.serverErrors} answered 5xx (seed ${seed}); statuses: ${statuses}`);
  client?.close();
  await receiver?.close();
});

/**
 * Path values that get a request as far as it can go: the caller's own resource for reads (so query
 * strings reach the cursor decoding), and ids of nothing elsewhere, so no fuzzed request deletes or
 * changes a fixture. Never a real job for the event stream, which would stay open.
 */
function pathValuesFor(operation: ApiOperation, own: TenantResources | null): Record<string, string> {
  const read = operation.method === 'GET' && !operation.successTypes.includes('text/event-stream') && own !== null;
  const nothing = {
    id: randomUUID(),
    substrate_id: `0x${randomUUID().replace(/-/g, '').slice(0, 16)}`,
    delivery_id: randomUUID(),
    name: 'no-such-schedule',
    service_type: 'compute',
  };
  if (!read) return nothing;
  const byPrefix: Array<[string, Record<string, string>]> = [
    ['/jobs/', { id: own.jobId }],
    ['/substrates/', { id: own.substrateId }],
    ['/batches/', { id: own.batchId }],
    ['/relationships/', { id: own.relationshipId, substrate_id: own.substrateId }],
    ['/webhooks/', { id: own.webhookId, delivery_id: own.deliveryId ?? randomUUID() }],
  ];
  const match = byPrefix.find(([prefix]) => operation.path.startsWith(prefix));
  return { ...nothing, ...match?.[1] };
}

function describeCase(badCase: BadCase, response?: RawResponse): string {
  const body = badCase.request.body === undefined ? '' : String(badCase.request.body);
  const headers = JSON.stringify(badCase.request.headers ?? {});
  const answer = response ? `\n→ ${response.status} ${response.headers['content-type'] ?? ''} ${response.text.slice(0, 400)}` : '';
  return `[${badCase.category}] ${badCase.request.method} ${badCase.request.path.slice(0, 300)}\nheaders ${headers.slice(0, 300)}\nbody ${JSON.stringify(body.slice(0, 300))}${body.length > 300 ? ` …(${body.length} chars)` : ''}${answer}`;
}

/** The promise of §5 and §8: no 5xx; every 4xx is problem+json with the HTTP status in the body. HTML pages may answer HTML. */
function checkAnswer(badCase: BadCase, response: RawResponse, options: { htmlAllowed?: boolean } = {}): void {
  tally.requests++;
  tally.byStatus.set(response.status, (tally.byStatus.get(response.status) ?? 0) + 1);
  if (response.status >= 500) tally.serverErrors++;
  const where = describeCase(badCase, response);
  expect(response.status, where).toBeLessThan(500);
  if (response.status < 400) return;
  const contentType = String(response.headers['content-type'] ?? '');
  if (options.htmlAllowed && contentType.startsWith('text/html')) return;
  expect(contentType, where).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(response.text) as Record<string, unknown>;
  expect(problem, where).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status: response.status,
    detail: expect.any(String),
  });
}

async function expectServerUp(): Promise<void> {
  const health = await client.send({ method: 'GET', path: '/api/v1/health' });
  expect(health.status, 'the server answers /health after the batch').toBe(200);
}

describe('bad input never gets a 5xx, and every 4xx is a problem', () => {
  it('reads its operations from the same document GET /openapi.json serves', async () => {
    const served = await client.send({ method: 'GET', path: '/api/v1/openapi.json' });
    expect(JSON.parse(served.text)).toEqual(JSON.parse(JSON.stringify(document)));
    expect(operations.length).toBeGreaterThan(50);
  });

  it.each(operations.map((operation) => [operation.key, operation] as const))(
    'answers bad input to %s below 500, every 4xx a problem',
    async (_key, operation) => {
      const failures: string[] = [];
      for (const caller of callers) {
        const context = {
          document,
          pathValues: pathValuesFor(operation, caller.own),
          tokens: callers.flatMap((c) => (c.token ? [c.token] : [])),
        };
        const withCredentials = (badCase: BadCase) => {
          const headers = { ...badCase.request.headers };
          if (caller.token && !('authorization' in headers)) headers.authorization = `Bearer ${caller.token}`;
          return { ...badCase.request, headers };
        };
        // Without credentials a route that needs them answers 401 before its own validation, so the exhaustive
        // cases run there only for public routes; the random categories still send their garbage everywhere.
        const edges = caller.token || operation.auth === 'none' ? edgeCases(operation, context) : [];
        for (const badCase of edges) {
          try {
            checkAnswer(badCase, await client.send(withCredentials(badCase)));
          } catch (error) {
            failures.push(`as ${caller.name}: ${(error as Error).message}`);
          }
        }
        for (const category of caseCategories(operation, context)) {
          // Without credentials most operations stop at the 401, so fewer runs buy the same coverage.
          const runs = Math.max(1, Math.round(category.runs * runsFactor * (caller.token ? 1 : 0.5)));
          const outcome = await fc.check(
            fc.asyncProperty(category.arbitrary, async (badCase) => checkAnswer(badCase, await client.send(withCredentials(badCase)))),
            { numRuns: runs, seed, endOnFailure: true },
          );
          if (outcome.failed)
            failures.push(`as ${caller.name}, ${category.name} (seed ${seed}): ${(outcome.errorInstance as Error | null)?.message}`);
        }
      }
      await expectServerUp();
      expect(failures, failures.join('\n\n')).toEqual([]);
    },
  );

  it('answers bad input to the admin pages outside /api/v1 (login form, logout, Bull Board) below 500', async () => {
    const failures: string[] = [];
    for (const badCase of [...adminPageEdgeCases(), ...fc.sample(adminPageCases(), { numRuns: Math.round(120 * runsFactor), seed })]) {
      try {
        checkAnswer(badCase, await client.send(badCase.request), { htmlAllowed: true });
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    await expectServerUp();
    expect(failures, failures.join('\n\n')).toEqual([]);
  });

  it('answered every fuzzed request below 500', () => {
    expect(tally.requests).toBeGreaterThan(operations.length * 50);
    expect(tally.serverErrors).toBe(0);
  });
});
