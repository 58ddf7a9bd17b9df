import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { HangingReceiver } from './hanging-receiver.js';
import { Receiver } from './receiver.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let receiver: Receiver;

beforeAll(async () => {
  // Small figures so a breaker's life plays out within a test: 2 failures open it for 300 ms (doubling),
  // 6 failures in a row disable the endpoint; retries 50 ms apart.
  app = await startTestApp({
    WEBHOOK_RETRY_BASE_MS: '50',
    WEBHOOK_BREAKER_FAILURES: '2',
    WEBHOOK_BREAKER_COOLDOWN_MS: '300',
    WEBHOOK_DISABLE_AFTER_FAILURES: '6',
    WEBHOOK_TIMEOUT_MS: '3000',
    WEBHOOK_HALF_OPEN_TIMEOUT_MS: '1000',
  });
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  receiver = await Receiver.start();
});

afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

async function customerWithConstant(): Promise<{ user: TestUser; substrateId: string }> {
  const user = await registerUser(request);
  const created = await request('POST', '/api/v1/substrates', { token: user.accessToken, body: { expression_type: 'constant', value: 7 } });
  expect(created.status, created.text).toBe(201);
  return { user, substrateId: created.body.substrate_id };
}

const submitInvoke = (token: string, substrateId: string) =>
  request('POST', '/api/v1/jobs', { token, body: { type: 'invoke', payload: { substrate_id: substrateId } } });

async function endpointListed(token: string, id: string) {
  const list = await request('GET', '/api/v1/webhooks', { token });
  expect(list.status).toBe(200);
  return list.body.items.find((endpoint: { id: string }) => endpoint.id === id);
}

describe('webhook circuit breaker', () => {
  it('opens after consecutive failures, disables the endpoint after a long failure and shows it in GET /webhooks; enable resumes', async () => {
    const { user, substrateId } = await customerWithConstant();
    receiver.answer('/failing', ...Array(50).fill(500));
    const created = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: receiver.url('/failing'), events: ['job.completed'] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ state: 'active', disabled_at: null, breaker: { state: 'closed', consecutive_failures: 0 } });
    const id = created.body.id as string;

    expect((await submitInvoke(user.accessToken, substrateId)).status).toBe(202);
    const opened = await waitFor(async () => {
      const endpoint = await endpointListed(user.accessToken, id);
      return endpoint.breaker.consecutive_failures >= 2 ? endpoint : null;
    });
    expect(opened.breaker.failing_since).not.toBeNull();
    expect(opened.breaker.open_until).not.toBeNull();

    const disabled = await waitFor(async () => {
      const endpoint = await endpointListed(user.accessToken, id);
      return endpoint.state === 'disabled' ? endpoint : null;
    }, 30_000);
    expect(disabled).toMatchObject({ state: 'disabled', disabled_reason: '6 consecutive failed deliveries' });
    expect(disabled.disabled_at).not.toBeNull();
    const attemptsWhenDisabled = receiver.at('/failing').length;
    expect(attemptsWhenDisabled).toBe(6);

    // A disabled endpoint gets nothing: no new delivery, and the pending one is not sent again.
    expect((await submitInvoke(user.accessToken, substrateId)).status).toBe(202);
    const deliveries = await waitFor(async () => {
      const page = await request('GET', `/api/v1/webhooks/${id}/deliveries`, { token: user.accessToken });
      return page.body.items.every((delivery: { state: string }) => delivery.state !== 'pending') ? page.body.items : null;
    }, 15_000);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0].state).toBe('failed');
    expect(receiver.at('/failing')).toHaveLength(attemptsWhenDisabled);

    const enabled = await request('POST', `/api/v1/webhooks/${id}/enable`, { token: user.accessToken });
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ state: 'active', disabled_reason: null, breaker: { state: 'closed', consecutive_failures: 0 } });
  }, 60_000);

  it('answers 404 to enabling an unknown endpoint, and 400 naming the id when it is no UUID', async () => {
    const { user } = await customerWithConstant();
    const unknown = await request('POST', '/api/v1/webhooks/0190a000-0000-7000-8000-000000000000/enable', { token: user.accessToken });
    expect(unknown.status).toBe(404);
    const bad = await request('POST', '/api/v1/webhooks/not-a-uuid/enable', { token: user.accessToken });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.errors)).toContain('params.id');
  });

  it('closes the breaker when the half-open trial succeeds', async () => {
    const { user, substrateId } = await customerWithConstant();
    receiver.answer('/flaky', 500, 500);
    const created = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: receiver.url('/flaky'), events: ['job.completed'] },
    });
    expect((await submitInvoke(user.accessToken, substrateId)).status).toBe(202);
    const closed = await waitFor(async () => {
      const endpoint = await endpointListed(user.accessToken, created.body.id);
      return receiver.at('/flaky').length >= 3 && endpoint.breaker.state === 'closed' ? endpoint : null;
    }, 20_000);
    expect(closed).toMatchObject({ state: 'active', breaker: { consecutive_failures: 0, failing_since: null, open_until: null } });
    expect(receiver.at('/flaky')).toHaveLength(3);
  }, 30_000);

  it("gives a hanging endpoint's half-open trial the short timeout (WEBHOOK_HALF_OPEN_TIMEOUT_MS)", async () => {
    const hanging = await HangingReceiver.start();
    try {
      const { user, substrateId } = await customerWithConstant();
      const created = await request('POST', '/api/v1/webhooks', {
        token: user.accessToken,
        body: { url: hanging.url('/hang'), events: ['job.completed'] },
      });
      expect((await submitInvoke(user.accessToken, substrateId)).status).toBe(202);
      const attempts = await waitFor(async () => {
        const page = await request('GET', `/api/v1/webhooks/${created.body.id}/deliveries`, { token: user.accessToken });
        const log = page.body.items[0]?.attempts ?? [];
        return log.length >= 3 ? log : null;
      }, 30_000);
      expect(attempts.slice(0, 3).map((attempt: { error: string }) => attempt.error)).toEqual([
        'no answer within 3000 ms',
        'no answer within 3000 ms',
        'no answer within 1000 ms',
      ]);
    } finally {
      await hanging.close();
    }
  }, 40_000);
});
