import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../api/openapi.js';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient, type HttpResponse } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * What a key of an edge service may do (issue 13, item 8; SPEC §5 Services). An API key belongs to one
 * service, and the edge proxy's traffic is billed to that service, so every call made with a `seal` key —
 * to the compute API too — counts against the seal service, is rate-limited by seal's tier and is refused
 * with 402 while seal is suspended, whatever compute's state. Not a hole: the key's service pays.
 */
let app: TestApp;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  // Tier figures × 0.01: starter allows a request or two a minute, so a limit is reached in a few calls.
  app = await startTestApp({ RATE_LIMIT_MULTIPLIER: '0.01' });
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

/** A customer whose compute service is unlimited (enterprise) and whose seal service is enabled at `sealTier`, with a seal key. */
async function customerWithSealKey(sealTier: string) {
  const user = await registerUser(request);
  const customerId = (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
  await app.sql(`update service_instances set tier = 'enterprise' where customer_id = $1 and service_type = 'compute'`, [customerId]);
  await app.sql(`insert into service_instances (customer_id, service_type, tier, enabled) values ($1, 'seal', $2, true)`, [
    customerId,
    sealTier,
  ]);
  await app.deps.principals.invalidateCustomer(customerId);
  const created = await request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name: 'edge', service_type: 'seal' } });
  expect(created.status, created.text).toBe(201);
  const setSeal = async (change: string) => {
    await app.sql(`update service_instances set ${change} where customer_id = $1 and service_type = 'seal'`, [customerId]);
    await app.deps.principals.invalidateCustomer(customerId);
  };
  return { user, customerId, sealKey: created.body.key as string, setSeal };
}

describe('a seal key calling the compute API', () => {
  it("is rate-limited by the seal service's tier, not compute's", async () => {
    const { user, sealKey, setSeal } = await customerWithSealKey('starter');
    let refused: HttpResponse | null = null;
    for (let call = 0; call < 200 && !refused; call++) {
      const response = await request('GET', '/api/v1/jobs', { token: sealKey });
      if (response.status === 429) refused = response;
      else {
        expect(response.status, response.text).toBe(200);
        expect(response.headers.get('ratelimit-limit'), 'seal at starter is limited').not.toBeNull();
      }
    }
    expect(refused, 'the seal key reached seal-starter’s limit').not.toBeNull();
    expectProblem(refused!, 429, 'rate-limited');
    expect(refused!.body.detail).toMatch(/seal service at tier starter/);

    // Compute (enterprise) is not limited, and the seal key's count is not the access token's.
    const compute = await request('GET', '/api/v1/jobs', { token: user.accessToken });
    expect(compute.status).toBe(200);
    expect(compute.headers.get('ratelimit-limit')).toBeNull();

    // The seal tier decides: at enterprise the same key is unlimited.
    await setSeal(`tier = 'enterprise'`);
    const unlimited = await request('GET', '/api/v1/jobs', { token: sealKey });
    expect(unlimited.status, unlimited.text).toBe(200);
    expect(unlimited.headers.get('ratelimit-limit')).toBeNull();
  });

  it('is refused with 402 while seal is suspended or disabled, though compute is active', async () => {
    const { user, sealKey, setSeal } = await customerWithSealKey('enterprise');
    expect((await request('GET', '/api/v1/jobs', { token: sealKey })).status).toBe(200);

    await setSeal(`suspended_reason = 'insufficient_balance'`);
    const suspended = await request('GET', '/api/v1/jobs', { token: sealKey });
    expectProblem(suspended, 402, 'payment-required');
    expect(suspended.body).toMatchObject({ service_type: 'seal', reason: 'insufficient_balance' });
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status, 'compute is active').toBe(200);

    await setSeal(`suspended_reason = null, enabled = false`);
    const disabled = await request('POST', '/api/v1/substrates', { token: sealKey, body: { expression_type: 'constant', value: 7 } });
    expectProblem(disabled, 402, 'payment-required');
    expect(disabled.body.service_type).toBe('seal');
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);

    await setSeal('enabled = true');
    expect((await request('GET', '/api/v1/jobs', { token: sealKey })).status).toBe(200);
  });

  it('is refused with 402 at /stats too while seal is suspended or disabled; /auth/me, billing and services still answer', async () => {
    const { user, sealKey, setSeal } = await customerWithSealKey('enterprise');
    const active = await request('GET', '/api/v1/stats', { token: sealKey });
    expect(active.status, `/stats with seal active: ${active.text}`).toBe(200);

    for (const [change, reason] of [
      [`suspended_reason = 'insufficient_balance'`, 'insufficient_balance'],
      [`suspended_reason = null, enabled = false`, 'service_disabled'],
    ] as const) {
      await setSeal(change);
      const refused = await request('GET', '/api/v1/stats', { token: sealKey });
      expectProblem(refused, 402, 'payment-required');
      expect(refused.body).toMatchObject({ service_type: 'seal', reason });
      // The access token's calls count against compute, which is active.
      expect((await request('GET', '/api/v1/stats', { token: user.accessToken })).status, '/stats with compute active').toBe(200);
      // Paying is how a suspension ends: the account, billing and services answer with the suspended key.
      for (const path of ['/api/v1/auth/me', '/api/v1/billing/balance', '/api/v1/services']) {
        expect((await request('GET', path, { token: sealKey })).status, path).toBe(200);
      }
    }
  });

  it('lets a customer whose compute service is suspended read /auth/me, accept the terms (billing asks for them) and pay, but not read /stats', async () => {
    const { user, customerId } = await customerWithSealKey('enterprise');
    await app.sql(`update service_instances set suspended_reason = 'insufficient_balance' where customer_id = $1`, [customerId]);
    await app.deps.principals.invalidateCustomer(customerId);
    expectProblem(await request('GET', '/api/v1/stats', { token: user.accessToken }), 402, 'payment-required');
    expect((await request('GET', '/api/v1/auth/me', { token: user.accessToken })).status).toBe(200);
    const tos = (await request('GET', '/api/v1/tos')).body.version as string;
    const accepted = await request('POST', '/api/v1/tos/accept', { token: user.accessToken, body: { version: tos } });
    expect(accepted.status, accepted.text).toBe(200);
    expect((await request('GET', '/api/v1/billing/balance', { token: user.accessToken })).status).toBe(200);
  });

  it('is recorded in the request log (and so metered and billed) as seal', async () => {
    const { user, customerId, sealKey } = await customerWithSealKey('enterprise');
    for (let call = 0; call < 3; call++) expect((await request('GET', '/api/v1/jobs', { token: sealKey })).status).toBe(200);
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
    await app.deps.requestLog.flush();
    const rows = await app.sql<{ service_type: string; n: number }>(
      `select service_type, count(*)::int as n from request_logs where customer_id = $1 and method = 'GET' group by service_type order by service_type`,
      [customerId],
    );
    expect(rows.find((row) => row.service_type === 'seal')?.n).toBe(3);
    // The access token's own calls count against compute.
    expect(rows.find((row) => row.service_type === 'compute')?.n).toBeGreaterThanOrEqual(1);
    expect(rows.map((row) => row.service_type)).toEqual(['compute', 'seal']);
  });
});

describe('the rule is documented where keys are made', () => {
  it('POST /api-keys says, for service_type, that the key’s calls are billed, limited and suspended by that service, and why', () => {
    type Operation = {
      description?: string;
      requestBody: { content: Record<string, { schema: { properties: Record<string, { description?: string }> } }> };
    };
    const operation = (buildOpenApiDocument().paths ?? {})['/api-keys']?.post as Operation;
    const serviceType = operation.requestBody.content['application/json']!.schema.properties.service_type!.description ?? '';
    expect(serviceType).toMatch(/seal/);
    expect(serviceType).toMatch(/rate-limited/);
    expect(serviceType).toMatch(/402/);
    expect(serviceType).toMatch(/billed/);
    expect(operation.description ?? '').toMatch(/edge proxy/);
  });
});
