import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { apiKeySchema, meSchema, newApiKeySchema, tokensSchema, userSchema } from '../../api/openapi/accounts.openapi.js';
import { adminCustomerSchema } from '../../api/openapi/admin.openapi.js';
import { batchItemSchema, batchSchema } from '../../api/openapi/batches.openapi.js';
import { balanceSchema, serviceSchema } from '../../api/openapi/billing.openapi.js';
import { pageOf, problem } from '../../api/openapi/document-route.js';
import { jobAcceptedSchema, jobSchema } from '../../api/openapi/jobs.openapi.js';
import { relationshipSchema } from '../../api/openapi/relationships.openapi.js';
import { scheduleSchema } from '../../api/openapi/schedules.openapi.js';
import { substrateSchema } from '../../api/openapi/substrates.openapi.js';
import { newWebhookSchema, webhookSchema } from '../../api/openapi/webhooks.openapi.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
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

/** The body parses with the documented schema, and has no top-level field the schema does not name. */
function expectDocumented(schema: z.ZodType, body: unknown): void {
  const parsed = schema.safeParse(body);
  expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  if (shape && body && typeof body === 'object') expect(Object.keys(body).filter((key) => !(key in shape))).toEqual([]);
}

describe('GET /api/v1/openapi.json', () => {
  it('serves a valid OpenAPI 3.1 document whose every $ref resolves', async () => {
    const response = await request('GET', '/api/v1/openapi.json');
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe('3.1.0');
    expect(response.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(response.body.servers).toEqual([{ url: '/api/v1' }]);
    await expect(SwaggerParser.validate(structuredClone(response.body))).resolves.toBeTruthy();
  });

  it('documents problem answers and the request schemas the routes validate with', async () => {
    const { body } = await request('GET', '/api/v1/openapi.json');
    const submit = body.paths['/jobs'].post;
    expect(submit.responses['400'].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
    expect(submit.requestBody.content['application/json'].schema).toMatchObject({ additionalProperties: false, required: ['type'] });
    expect(submit.security).toEqual([{ bearerAuth: [] }, { consoleSession: [] }]);
    expect(body.paths['/auth/login'].post.security).toEqual([]);
    const listJobs = body.paths['/jobs'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(listJobs.schema).toMatchObject({ minimum: 1, maximum: 100 });
  });

  it('documents limits as 422 with their bounds, 415 for bodies that are not JSON, the batch items filter and the capped error list', async () => {
    const { body } = await request('GET', '/api/v1/openapi.json');
    const batches = body.paths['/batches'].post;
    expect(batches.requestBody.content['application/json'].schema.properties.invocations).toMatchObject({ minItems: 1, maxItems: 10_000 });
    for (const [path, method] of [
      ['/batches', 'post'],
      ['/substrates/batch', 'post'],
      ['/relationships/traverse', 'post'],
      ['/substrates/{id}/invoke', 'post'],
      ['/substrates/{id}', 'patch'],
      ['/jobs', 'post'],
    ] as const) {
      expect(Object.keys(body.paths[path][method].responses), `${method} ${path}`).toEqual(expect.arrayContaining(['400', '415', '422']));
    }
    expect(body.paths['/relationships/traverse'].post.requestBody.content['application/json'].schema.properties.max_depth).toMatchObject({
      maximum: 10,
    });
    expect(body.paths['/batches/{id}'].get.responses['415']).toBeUndefined();
    const state = body.paths['/batches/{id}/items'].get.parameters.find((p: { name: string }) => p.name === 'state');
    expect(state.schema.enum).toEqual(['completed', 'failed']);
    expect(body.components.schemas.Problem.properties.errors_total).toMatchObject({ type: 'integer' });
  });
});

describe('GET /api/v1/docs', () => {
  it('serves the reference UI at /docs and /docs/ alike, with every asset from this origin', async () => {
    const bare = await request('GET', '/api/v1/docs');
    expect(bare.status).toBe(200);
    expect(bare.text).toContain('<base href="/api/v1/docs/">');
    const page = await request('GET', '/api/v1/docs/');
    expect(page.status).toBe(200);
    expect(page.text).toBe(bare.text);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const assets = [...page.text.matchAll(/<(?!base)[^>]*\b(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    expect(assets).toEqual(expect.arrayContaining(['./swagger-ui.css', './swagger-ui-bundle.js', './swagger-ui-init.js']));
    for (const asset of assets) {
      expect(asset, 'no CDN').toMatch(/^\.\//);
      expect((await request('GET', `/api/v1/docs/${asset.slice(2)}`)).status, asset).toBe(200);
    }
    expect((await request('GET', '/api/v1/docs/swagger-ui-init.js')).text).toContain('/api/v1/openapi.json');
  });
});

describe('real answers match the documented schemas', () => {
  it('accounts, substrates, jobs and problems', async () => {
    const email = `docs-${Date.now()}@example.test`;
    const registered = await request('POST', '/api/v1/auth/register', {
      body: { email, password: 'correct horse battery', accept_tos: true, tos_version: '1.0.0' },
    });
    expectDocumented(userSchema, registered.body);
    const tokens = await request('POST', '/api/v1/auth/login', { body: { email, password: 'correct horse battery' } });
    expectDocumented(tokensSchema, tokens.body);
    const token = tokens.body.access_token as string;
    expectDocumented(meSchema, (await request('GET', '/api/v1/auth/me', { token })).body);
    expectDocumented(
      newApiKeySchema,
      (await request('POST', '/api/v1/api-keys', { token, body: { name: 'docs', service_type: 'compute' } })).body,
    );
    expectDocumented(pageOf(apiKeySchema), (await request('GET', '/api/v1/api-keys', { token })).body);

    const substrate = await request('POST', '/api/v1/substrates', {
      token,
      body: { expression_type: 'expression', expression: 'x + 1', metadata: { name: 'docs' } },
    });
    expectDocumented(substrateSchema, substrate.body);
    expectDocumented(
      substrateSchema,
      (await request('POST', '/api/v1/substrates', { token, body: { expression_type: 'constant', value: 3 } })).body,
    );
    expectDocumented(pageOf(substrateSchema), (await request('GET', '/api/v1/substrates', { token })).body);

    const id = substrate.body.substrate_id;
    const finished = await request('POST', `/api/v1/substrates/${id}/invoke`, {
      token,
      headers: { prefer: 'wait=10' },
      body: { parameters: { x: 1 } },
    });
    expect(finished.status).toBe(200);
    expectDocumented(jobSchema, finished.body);
    const accepted = await request('POST', `/api/v1/substrates/${id}/invoke`, { token, body: { parameters: { x: 2 } } });
    expect(accepted.status).toBe(202);
    expectDocumented(jobAcceptedSchema, accepted.body);
    expectDocumented(pageOf(jobSchema), (await request('GET', '/api/v1/jobs', { token })).body);

    expectDocumented(problem, (await request('GET', '/api/v1/jobs?limit=0', { token })).body);
  });

  it('batches, relationships, schedules, webhooks, billing, services and the admin customer list', async () => {
    const { accessToken: token } = await registerUser(request);
    const create = async (expression: string) =>
      (await request('POST', '/api/v1/substrates', { token, body: { expression_type: 'expression', expression } })).body
        .substrate_id as string;
    const [a, b] = [await create('x * 2'), await create('x * 3')];

    const batch = await request('POST', '/api/v1/batches', {
      token,
      headers: { prefer: 'wait=10' },
      body: { invocations: [{ substrate_id: a, parameters: { x: 1 } }] },
    });
    expectDocumented(jobSchema, batch.body);
    expectDocumented(batchSchema, (await request('GET', `/api/v1/batches/${batch.body.id}`, { token })).body);
    expectDocumented(pageOf(batchItemSchema), (await request('GET', `/api/v1/batches/${batch.body.id}/items`, { token })).body);

    const edge = await request('POST', '/api/v1/relationships', { token, body: { source_id: a, target_id: b, type: 'DEPENDENCY' } });
    expectDocumented(relationshipSchema, edge.body);
    expectDocumented(pageOf(relationshipSchema), (await request('GET', `/api/v1/relationships/outgoing/${a}`, { token })).body);

    const schedule = await request('POST', '/api/v1/schedules', {
      token,
      body: { name: 'docs', every_ms: 3_600_000, job: { type: 'invoke', payload: { substrate_id: a, parameters: { x: 1 } } } },
    });
    expectDocumented(scheduleSchema, schedule.body);
    expectDocumented(scheduleSchema, (await request('POST', '/api/v1/schedules/docs/pause', { token })).body);

    const webhook = await request('POST', '/api/v1/webhooks', {
      token,
      body: { url: 'http://127.0.0.1:9/hook', events: ['job.completed'] },
    });
    expectDocumented(newWebhookSchema, webhook.body);
    expectDocumented(pageOf(webhookSchema), (await request('GET', '/api/v1/webhooks', { token })).body);

    expectDocumented(balanceSchema, (await request('GET', '/api/v1/billing/balance', { token })).body);
    expectDocumented(pageOf(serviceSchema), (await request('GET', '/api/v1/services', { token })).body);
    expectDocumented(
      pageOf(adminCustomerSchema),
      (await request('GET', '/api/v1/admin/customers', { token: await loginAdmin(request) })).body,
    );
  });
});
