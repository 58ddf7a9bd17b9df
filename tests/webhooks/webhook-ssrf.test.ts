import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver } from './receiver.js';

/** Where a webhook must never go: loopback, RFC 1918, cloud metadata (link-local), IPv6 loopback, a name for loopback, CGNAT, unspecified. */
const forbidden = [
  'http://127.0.0.1/hook',
  'http://10.0.0.1/hook',
  'http://192.168.1.10/hook',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]/hook',
  'http://localhost:8080/hook',
  'http://100.64.0.1/hook',
  'http://0.0.0.0/hook',
  'http://[fd00::1]/hook',
  'http://[::ffff:127.0.0.1]/hook',
  // IPv6 forms that embed an IPv4 address: IPv4-compatible (::/96), IPv4-translated, NAT64, 6to4, Teredo.
  'http://[::7f00:1]/',
  'http://[::a9fe:a9fe]/',
  'http://[::127.0.0.1]/hook',
  'http://[::ffff:0:7f00:1]/hook',
  'http://[64:ff9b::a9fe:a9fe]/latest/meta-data/',
  'http://[2002:c0a8:101::1]/hook',
  'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook',
];

describe('SSRF guard at registration (WEBHOOK_ALLOW_PRIVATE=false)', () => {
  let app: TestApp;
  let request: ReturnType<typeof httpClient>;
  let user: TestUser;

  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_ALLOW_PRIVATE: 'false' });
    request = httpClient(app.baseUrl);
    user = await registerUser(request);
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each(forbidden)('refuses to register %s with 422 naming body.url', async (url) => {
    expectProblem(
      await request('POST', '/api/v1/webhooks', { token: user.accessToken, body: { url, events: ['job.completed'] } }),
      422,
      'unprocessable',
      ['body.url'],
    );
  });

  it.each(forbidden)('refuses a job with webhook_url %s with 422 naming body.webhook_url', async (url) => {
    const response = await request('POST', '/api/v1/jobs', {
      token: user.accessToken,
      body: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } }, webhook_url: url },
    });
    expectProblem(response, 422, 'unprocessable', ['body.webhook_url']);
  });

  it('names why: the address and its kind', async () => {
    const response = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: 'http://localhost/hook', events: ['job.failed'] },
    });
    expect(response.body.errors[0].message).toMatch(/localhost resolves to (127\.0\.0\.1|::1) is a loopback address/);
  });

  it.each([
    ['POST /webhooks', '/api/v1/webhooks', { url: 'http://127.0.0.1:8080/hook', events: ['job.completed'] }],
    [
      'a job webhook_url',
      '/api/v1/jobs',
      { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } }, webhook_url: 'http://localhost:8080/hook' },
    ],
  ])(
    'names WEBHOOK_ALLOW_PRIVATE in the detail of a loopback refusal (%s), as a setting for local use, not production',
    async (_label, path, body) => {
      const response = await request('POST', path, { token: user.accessToken, body });
      expect(response.status).toBe(422);
      expect(response.body.detail).toMatch(/loopback address/);
      expect(response.body.detail).toMatch(/WEBHOOK_ALLOW_PRIVATE=true/);
      expect(response.body.detail).toMatch(/not in production/);
    },
  );

  it('gives no such hint when the host does not resolve', async () => {
    const response = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: 'http://no-such-host.invalid/hook', events: ['job.completed'] },
    });
    expect(response.status).toBe(422);
    expect(response.body.detail).not.toMatch(/WEBHOOK_ALLOW_PRIVATE/);
  });

  it('accepts a public address', async () => {
    const response = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: 'https://93.184.215.14/hook', events: ['job.completed'] },
    });
    expect(response.status, response.text).toBe(201);
  });
});

describe('SSRF guard at delivery (registered while allowed, delivered by a worker that is not)', () => {
  let app: TestApp;
  let request: ReturnType<typeof httpClient>;
  let receiver: Receiver;

  beforeAll(async () => {
    app = await startTestApp();
    await app.startWorkers({ webhookAllowPrivate: false });
    request = httpClient(app.baseUrl);
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await app?.close();
    await receiver?.close();
  });

  it('records a refused attempt with the reason, and nothing reaches the receiver', async () => {
    const user = await registerUser(request);
    const endpoint = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: receiver.url('/loopback'), events: ['job.completed'] },
    });
    expect(endpoint.status, endpoint.text).toBe(201);
    const job = await request('POST', '/api/v1/jobs', {
      token: user.accessToken,
      body: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } }, webhook_url: receiver.url('/job-url') },
    });
    expect(job.status).toBe(202);

    const delivery = await waitFor(async () => {
      const response = await request('GET', `/api/v1/webhooks/${endpoint.body.id}/deliveries`, { token: user.accessToken });
      return response.body.items?.[0]?.attempts.length > 0 ? response.body.items[0] : null;
    });
    expect(delivery.state).toBe('pending');
    expect(delivery.attempts[0]).toMatchObject({
      attempt: 1,
      status_code: null,
      error: expect.stringMatching(/127\.0\.0\.1.*not allowed.*loopback address/),
    });
    // The job's own webhook_url is refused the same way.
    // An empty list is truthy: wait for the attempt itself (it may land after the endpoint's).
    const [row] = await waitFor(async () => {
      const rows = await app.sql<{ error: string }>(
        `select a.error from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id where d.endpoint_id is null`,
      );
      return rows.length > 0 && rows;
    });
    expect(row?.error).toMatch(/not allowed/);
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses an IPv4-compatible address (::127.0.0.1) when the delivery connects', async () => {
    const user = await registerUser(request);
    const compatible = receiver.url('/compatible').replace('127.0.0.1', '[::7f00:1]');
    const endpoint = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: compatible, events: ['job.completed'] },
    });
    expect(endpoint.status, endpoint.text).toBe(201);
    const job = await request('POST', '/api/v1/jobs', {
      token: user.accessToken,
      body: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } } },
    });
    expect(job.status).toBe(202);

    const delivery = await waitFor(async () => {
      const response = await request('GET', `/api/v1/webhooks/${endpoint.body.id}/deliveries`, { token: user.accessToken });
      return response.body.items?.[0]?.attempts.length > 0 ? response.body.items[0] : null;
    });
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error: expect.stringMatching(/::7f00:1.*not allowed/) });
    expect(receiver.at('/compatible')).toHaveLength(0);
  });
});
