import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver, type ReceivedRequest } from './receiver.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let receiver: Receiver;

beforeAll(async () => {
  // Retries 50 ms apart (doubling) instead of 30 s, so a retry schedule plays out within a test.
  app = await startTestApp({ WEBHOOK_RETRY_BASE_MS: '50' });
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  receiver = await Receiver.start();
});

afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

/** A fresh customer (so no other test's endpoints see its jobs) with a constant substrate to invoke. */
async function customer(): Promise<{ user: TestUser; substrateId: string }> {
  const user = await registerUser(request);
  const created = await request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'constant', value: 42 },
  });
  expect(created.status, created.text).toBe(201);
  return { user, substrateId: created.body.substrate_id };
}

async function submitInvoke(token: string, substrateId: string, webhookUrl?: string): Promise<string> {
  const response = await request('POST', '/api/v1/jobs', {
    token,
    body: { type: 'invoke', payload: { substrate_id: substrateId }, ...(webhookUrl ? { webhook_url: webhookUrl } : {}) },
  });
  expect(response.status, response.text).toBe(202);
  return response.body.id;
}

async function registerEndpoint(token: string, url: string, events: string[]): Promise<{ id: string; secret: string }> {
  const response = await request('POST', '/api/v1/webhooks', { token, body: { url, events } });
  expect(response.status, response.text).toBe(201);
  return { id: response.body.id, secret: response.body.secret };
}

const received = (path: string, count: number) => waitFor(async () => (receiver.at(path).length >= count ? receiver.at(path) : null));

function verify(secret: string, delivered: ReceivedRequest): { type: string; timestamp: string; data: { job: Record<string, unknown> } } {
  return new Webhook(secret).verify(delivered.body, delivered.headers as Record<string, string>) as never;
}

describe('webhook delivery', () => {
  it("delivers a job's completion to its webhook_url, signed with the account secret so the standardwebhooks verifier accepts it", async () => {
    const { user, substrateId } = await customer();
    const secret = await request('GET', '/api/v1/webhooks/secret', { token: user.accessToken });
    expect(secret.status).toBe(200);
    expect(secret.body.secret).toMatch(/^whsec_/);

    const jobId = await submitInvoke(user.accessToken, substrateId, receiver.url('/job-url'));
    const [delivered] = await received('/job-url', 1);
    expect(delivered?.headers['webhook-id']).toMatch(/^msg_/);
    expect(delivered?.headers['content-type']).toBe('application/json');
    const event = verify(secret.body.secret, delivered as ReceivedRequest);
    expect(event).toMatchObject({
      type: 'job.completed',
      data: { job: { id: jobId, type: 'invoke', state: 'completed', result: { result: 42 } } },
    });
    expect(new Date(event.timestamp).toISOString()).toBe(event.timestamp);
  });

  it('signs with the new account secret after a rotation, and the old one no longer verifies', async () => {
    const { user, substrateId } = await customer();
    const old = await request('GET', '/api/v1/webhooks/secret', { token: user.accessToken });
    const rotated = await request('POST', '/api/v1/webhooks/secret', { token: user.accessToken });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(old.body.secret);

    await submitInvoke(user.accessToken, substrateId, receiver.url('/rotated'));
    const [delivered] = await received('/rotated', 1);
    expect(verify(rotated.body.secret, delivered as ReceivedRequest).type).toBe('job.completed');
    expect(() => verify(old.body.secret, delivered as ReceivedRequest)).toThrow(/signature/i);
  });

  it('retries a receiver that answers 500 twice, delivers on the third attempt under one webhook-id, and lists all three attempts', async () => {
    const { user, substrateId } = await customer();
    receiver.answer('/flaky', 500, 500);
    const endpoint = await registerEndpoint(user.accessToken, receiver.url('/flaky'), ['job.completed']);
    const jobId = await submitInvoke(user.accessToken, substrateId);

    const attempts = await received('/flaky', 3);
    const ids = new Set(attempts.map((a) => a.headers['webhook-id']));
    expect(ids.size).toBe(1);
    for (const attempt of attempts) expect(verify(endpoint.secret, attempt).data.job.id).toBe(jobId);

    const listed = await waitFor(async () => {
      const response = await request('GET', `/api/v1/webhooks/${endpoint.id}/deliveries`, { token: user.accessToken });
      return response.body.items?.[0]?.state === 'succeeded' ? response : null;
    });
    expect(listed.body.items).toHaveLength(1);
    const delivery = listed.body.items[0];
    expect(delivery).toMatchObject({ event_type: 'job.completed', job_id: jobId, webhook_id: [...ids][0], state: 'succeeded' });
    expect(delivery.attempts.map((a: { status_code: number }) => a.status_code)).toEqual([500, 500, 200]);
    expect(delivery.attempts.map((a: { attempt: number }) => a.attempt)).toEqual([1, 2, 3]);
    expect(delivery.attempts[0]).toMatchObject({ error: 'receiver answered 500', duration_ms: expect.any(Number), at: expect.any(String) });
    expect(delivery.attempts[2].error).toBeNull();
  });

  it('counts a 302 redirect as a failed attempt and does not follow it', async () => {
    const { user, substrateId } = await customer();
    receiver.answer('/redirecting', { status: 302, headers: { location: receiver.url('/redirect-target') } });
    const endpoint = await registerEndpoint(user.accessToken, receiver.url('/redirecting'), ['job.completed']);
    await submitInvoke(user.accessToken, substrateId);

    const listed = await waitFor(async () => {
      const response = await request('GET', `/api/v1/webhooks/${endpoint.id}/deliveries`, { token: user.accessToken });
      return response.body.items?.[0]?.state === 'succeeded' ? response : null;
    });
    const [first, second] = listed.body.items[0].attempts;
    expect(first).toMatchObject({ status_code: 302, error: expect.stringMatching(/redirect \(302 to .*\/redirect-target\) not followed/) });
    expect(second).toMatchObject({ status_code: 200, error: null });
    expect(receiver.at('/redirect-target')).toHaveLength(0);
  });

  it('sends job.failed to endpoints subscribed to it and nothing to endpoints that are not', async () => {
    const { user, substrateId } = await customer();
    const failedHook = await registerEndpoint(user.accessToken, receiver.url('/failed-only'), ['job.failed']);
    const completedHook = await registerEndpoint(user.accessToken, receiver.url('/completed-only'), ['job.completed']);
    const submitted = await request('POST', '/api/v1/jobs', {
      token: user.accessToken,
      body: { type: 'invoke', payload: { substrate_id: substrateId, operation: { op: 'modulus', modulus: 0 } } },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const jobId = submitted.body.id;

    const [delivered] = await received('/failed-only', 1);
    const event = verify(failedHook.secret, delivered as ReceivedRequest);
    expect(event).toMatchObject({
      type: 'job.failed',
      data: { job: { id: jobId, state: 'failed', error: expect.stringMatching(/modulus must not be 0/) } },
    });
    // Both endpoints' deliveries are written in one statement: with the failed one there, the other has none.
    const other = await request('GET', `/api/v1/webhooks/${completedHook.id}/deliveries`, { token: user.accessToken });
    expect(other.body).toEqual({ items: [], next_cursor: null });
  });

  it('emits batch.completed for a batch job, besides job.completed', async () => {
    const { user, substrateId } = await customer();
    const endpoint = await registerEndpoint(user.accessToken, receiver.url('/batches'), ['batch.completed', 'job.completed']);
    const batch = await request('POST', '/api/v1/batches', {
      token: user.accessToken,
      body: { invocations: [{ substrate_id: substrateId, parameters: {} }] },
    });
    expect(batch.status, batch.text).toBe(202);

    const deliveries = await received('/batches', 2);
    const types = deliveries.map((d) => verify(endpoint.secret, d)).map((e) => `${e.type} ${e.data.job.id}`);
    expect(types.sort()).toEqual([`batch.completed ${batch.body.id}`, `job.completed ${batch.body.id}`]);
  });

  it('redelivers a delivery on request, under the same webhook-id, and records the new attempt', async () => {
    const { user, substrateId } = await customer();
    const endpoint = await registerEndpoint(user.accessToken, receiver.url('/redeliver'), ['job.completed']);
    await submitInvoke(user.accessToken, substrateId);
    const [first] = await received('/redeliver', 1);
    const delivery = await waitFor(async () => {
      const response = await request('GET', `/api/v1/webhooks/${endpoint.id}/deliveries`, { token: user.accessToken });
      return response.body.items?.[0]?.state === 'succeeded' ? response.body.items[0] : null;
    });

    const redelivered = await request('POST', `/api/v1/webhooks/${endpoint.id}/deliveries/${delivery.id}/redeliver`, {
      token: user.accessToken,
    });
    expect(redelivered.status).toBe(202);
    expect(redelivered.body).toMatchObject({ id: delivery.id, state: 'pending' });

    const [, second] = await received('/redeliver', 2);
    expect(second?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
    const after = await waitFor(async () => {
      const response = await request('GET', `/api/v1/webhooks/${endpoint.id}/deliveries`, { token: user.accessToken });
      const item = response.body.items?.[0];
      return item?.state === 'succeeded' && item.attempts.length === 2 ? item : null;
    });
    expect(after.attempts.map((a: { attempt: number }) => a.attempt)).toEqual([1, 2]);
  });
});
