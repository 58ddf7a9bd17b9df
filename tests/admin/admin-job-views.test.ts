import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginAdmin, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { openSse } from '../helpers/sse.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/** SPEC §9: admins see what a customer sees of its own jobs and batches, across customers. */
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;
let adminToken: string;
let aliceId: string;
let completedId: string;
let failedId: string;
let batchId: string;

async function finished(id: string): Promise<Record<string, unknown>> {
  return waitFor(async () => {
    const job = await request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken });
    return ['completed', 'failed'].includes(job.body.state as string) ? (job.body as Record<string, unknown>) : null;
  }, 20_000);
}

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  bob = await registerUser(request);
  adminToken = await loginAdmin(request);
  aliceId = (await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id as string;
  const substrateId = await createExpressionSubstrate(request, alice.accessToken, 'x * 2');
  const submit = (body: unknown, path = '/api/v1/jobs') => request('POST', path, { token: alice.accessToken, body });
  completedId = (await submit({ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 21 } } })).body.id as string;
  failedId = (
    await submit({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: 1 }, operation: { op: 'modulus', modulus: 0 } },
      attempts: 1,
    })
  ).body.id as string;
  batchId = (
    await submit(
      {
        invocations: [
          { substrate_id: substrateId, parameters: { x: 1 } },
          { substrate_id: '0x0000000000000001', parameters: {} },
        ],
      },
      '/api/v1/batches',
    )
  ).body.id as string;
  await Promise.all([finished(completedId), finished(failedId), finished(batchId)]);
}, 90_000);

afterAll(async () => {
  await app?.close();
});

const asAdmin = (method: string, path: string) => request(method, `/api/v1/admin${path}`, { token: adminToken });

describe("an administrator reads any customer's job", () => {
  it('GET /admin/jobs/:id answers the job as its owner reads it, with whose it is, and its payload on request', async () => {
    const owner = await request('GET', `/api/v1/jobs/${completedId}`, { token: alice.accessToken });
    const answer = await asAdmin('GET', `/jobs/${completedId}?include=payload`);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ customer_id: aliceId, ...owner.body, payload: expect.objectContaining({ parameters: { x: 21 } }) });
    expect((answer.body.result as { result: number }).result).toBe(42);
    // Without ?include the payload stays out, as for the owner.
    expect((await asAdmin('GET', `/jobs/${completedId}`)).body).not.toHaveProperty('payload');
  });

  it('answers 404 for an unknown job, 400 naming a malformed id, 403 to a customer (even the owner)', async () => {
    const unknown = await asAdmin('GET', '/jobs/0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e12');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    const malformed = await asAdmin('GET', '/jobs/not-a-job');
    expect(malformed.status).toBe(400);
    expect(JSON.stringify(malformed.body.errors)).toContain('params.id');
    for (const user of [alice, bob]) {
      expect((await request('GET', `/api/v1/admin/jobs/${completedId}`, { token: user.accessToken })).status).toBe(403);
      expect((await request('GET', `/api/v1/admin/batches/${batchId}`, { token: user.accessToken })).status).toBe(403);
    }
    // The customers' own route still hides Alice's job from Bob.
    expect((await request('GET', `/api/v1/jobs/${completedId}`, { token: bob.accessToken })).status).toBe(404);
  });

  it('refuses what it does not read with 400 naming it: another include, a body on the retry, a malformed batch id', async () => {
    const include = await asAdmin('GET', `/jobs/${completedId}?include=secrets`);
    expect(include.status).toBe(400);
    expect(JSON.stringify(include.body.errors)).toContain('query.include');
    const unknownQuery = await asAdmin('GET', `/jobs/${completedId}/webhook-deliveries?limit=0`);
    expect(unknownQuery.status).toBe(400);
    const withBody = await request('POST', `/api/v1/admin/jobs/${failedId}/retry`, { token: adminToken, body: { customer_id: aliceId } });
    expect(withBody.status).toBe(400);
    expect((await asAdmin('GET', '/batches/not-a-batch')).status).toBe(400);
    // Nothing was retried by the refused call.
    expect((await app.sql('select id from jobs where retry_of = $1', [failedId])).length).toBe(0);
  });

  it('GET /admin/jobs/failure-groups is not read as a job id', async () => {
    const groups = await asAdmin('GET', '/jobs/failure-groups');
    expect(groups.status, groups.text).toBe(200);
    expect(groups.body).toHaveProperty('items');
  });

  it("streams a finished job's final event, and lists its webhook deliveries", async () => {
    const stream = await openSse(`${app.baseUrl}/api/v1/admin/jobs/${completedId}/events`, { token: adminToken });
    expect(stream.status).toBe(200);
    const events = await stream.rest(5000);
    expect(events.at(-1)).toMatchObject({ event: 'state', id: 'final', data: { id: completedId, state: 'completed' } });
    const deliveries = await asAdmin('GET', `/jobs/${completedId}/webhook-deliveries`);
    expect(deliveries.status, deliveries.text).toBe(200);
    expect(deliveries.body).toEqual({ items: [], next_cursor: null });
    const bobs = await openSse(`${app.baseUrl}/api/v1/admin/jobs/${completedId}/events`, { token: bob.accessToken });
    expect(bobs.status).toBe(403);
    bobs.close();
  });

  it("GET /admin/batches/:id and /items answer a customer's batch; a job that is no batch is 404", async () => {
    const batch = await asAdmin('GET', `/batches/${batchId}`);
    expect(batch.status, batch.text).toBe(200);
    expect(batch.body).toMatchObject({ customer_id: aliceId, id: batchId, state: 'completed', total: 2, completed: 1, failed: 1 });
    const items = await asAdmin('GET', `/batches/${batchId}/items`);
    expect(items.status).toBe(200);
    expect((items.body.items as Array<{ index: number; state: string }>).map((item) => [item.index, item.state])).toEqual([
      [0, 'completed'],
      [1, 'failed'],
    ]);
    expect((await asAdmin('GET', `/batches/${completedId}`)).status).toBe(404);
  });

  it('every read is in the audit log under the job’s customer', async () => {
    await asAdmin('GET', `/jobs/${failedId}`);
    const audit = await asAdmin('GET', `/audit?action=job.view&customer_id=${aliceId}`);
    expect(audit.status).toBe(200);
    expect(audit.body.items).toContainEqual(
      expect.objectContaining({ action: 'job.view', customer_id: aliceId, details: { job_id: failedId } }),
    );
  });
});

describe("an administrator retries any customer's failed job", () => {
  it("POST /admin/jobs/:id/retry answers 202 with the customer's new job; the customer sees it; a completed job is 409", async () => {
    const answer = await asAdmin('POST', `/jobs/${failedId}/retry`);
    expect(answer.status, answer.text).toBe(202);
    expect(answer.body).toMatchObject({ customer_id: aliceId, type: 'invoke', retry_of: failedId });
    const retryId = answer.body.id as string;
    expect(answer.headers.get('location')).toBe(`/api/v1/jobs/${retryId}`);
    // Asked again before that retry ended (a double click): the same retry.
    const again = await asAdmin('POST', `/jobs/${failedId}/retry`);
    if (again.body.id !== retryId)
      expect((await request('GET', `/api/v1/jobs/${retryId}`, { token: alice.accessToken })).body.state).toBe('failed');
    const retried = await finished(retryId);
    expect(retried).toMatchObject({ retry_of: failedId, state: 'failed' });

    const refused = await asAdmin('POST', `/jobs/${completedId}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ state: 'completed' });
    const audit = await asAdmin('GET', `/audit?action=job.retry&customer_id=${aliceId}`);
    expect(audit.body.items).toContainEqual(expect.objectContaining({ details: { job_id: failedId, retry_id: retryId } }));
  }, 30_000);
});
