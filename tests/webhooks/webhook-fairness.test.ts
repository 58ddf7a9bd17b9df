import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { HangingReceiver } from './hanging-receiver.js';
import { Receiver } from './receiver.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let hanging: HangingReceiver;
let receiver: Receiver;

beforeAll(async () => {
  // The production delivery settings (32 per worker process, 10 s timeout, 4 per endpoint, 8 per customer);
  // retries 1 s apart instead of 30 s so the attacker's deliveries keep coming back during the test.
  app = await startTestApp({ WEBHOOK_RETRY_BASE_MS: '1000' });
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  hanging = await HangingReceiver.start();
  receiver = await Receiver.start();
});

afterAll(async () => {
  await app?.close();
  await hanging?.close();
  await receiver?.close();
});

async function customerWithConstant(): Promise<{ user: TestUser; substrateId: string }> {
  const user = await registerUser(request);
  const created = await request('POST', '/api/v1/substrates', { token: user.accessToken, body: { expression_type: 'constant', value: 7 } });
  expect(created.status, created.text).toBe(201);
  return { user, substrateId: created.body.substrate_id };
}

async function submitInvoke(token: string, substrateId: string): Promise<string> {
  const response = await request('POST', '/api/v1/jobs', { token, body: { type: 'invoke', payload: { substrate_id: substrateId } } });
  expect(response.status, response.text).toBe(202);
  return response.body.id;
}

describe('webhook deliveries are shared fairly between customers and endpoints', () => {
  it("delivers a victim's webhook within 15 s while another customer has 50 hanging endpoints, each held to 4 deliveries at once", async () => {
    const attacker = await customerWithConstant();
    for (let i = 0; i < 50; i++) {
      const created = await request('POST', '/api/v1/webhooks', {
        token: attacker.user.accessToken,
        body: { url: hanging.url(`/hang/${i}`), events: ['job.completed'] },
      });
      expect(created.status, created.text).toBe(201);
    }
    // 10 jobs × 50 endpoints: 500 deliveries that each hang for the full timeout, far more than the 32 slots.
    for (let i = 0; i < 10; i++) await submitInvoke(attacker.user.accessToken, attacker.substrateId);
    await waitFor(async () => hanging.total >= 8, 15_000);

    const victim = await customerWithConstant();
    const endpoint = await request('POST', '/api/v1/webhooks', {
      token: victim.user.accessToken,
      body: { url: receiver.url('/victim'), events: ['job.completed'] },
    });
    expect(endpoint.status).toBe(201);
    const jobId = await submitInvoke(victim.user.accessToken, victim.substrateId);
    const submittedAt = Date.now();
    const [delivered] = await waitFor(async () => (receiver.at('/victim').length > 0 ? receiver.at('/victim') : null), 15_000, 50);
    const deliveredAfterMs = Date.now() - submittedAt;
    expect(JSON.parse(delivered!.body).data.job.id).toBe(jobId);
    console.log(`victim's webhook delivered ${deliveredAfterMs} ms after its job was submitted; attacker requests open: ${hanging.total}`);

    // The attacker never had more than its customer cap (8) in flight, nor more than 4 at one endpoint.
    expect(Math.max(...hanging.mostOpen.values())).toBeLessThanOrEqual(4);
    expect(hanging.mostOpenTotal).toBeLessThanOrEqual(8);
  }, 60_000);
});
