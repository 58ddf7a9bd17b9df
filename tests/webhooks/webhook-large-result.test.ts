import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { useTestApp } from '../helpers/suite.js';
import { Receiver, type ReceivedRequest } from './receiver.js';

// A 1 KiB limit (the default is 64 KiB), so a result of ~10 KB is over it.
const suite = useTestApp({ workers: true, env: { WEBHOOK_RESULT_MAX_BYTES: '1024' } });
let receiver: Receiver;

beforeAll(async () => {
  receiver = await Receiver.start();
});

afterAll(async () => {
  await receiver?.close();
});

interface WebhookEvent {
  type: string;
  data: { job: Record<string, unknown> & { links?: { self: string } } };
}

/** A fresh customer with `endpoints` endpoints for job.completed at `path`, and a substrate returning ten copies of `s`. */
async function customer(path: string, endpoints: number): Promise<{ user: TestUser; substrateId: string; secrets: string[] }> {
  const user = await registerUser(suite.request);
  const secrets: string[] = [];
  for (let i = 0; i < endpoints; i++) {
    const created = await suite.request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: receiver.url(`${path}/${i}`), events: ['job.completed'] },
    });
    expect(created.status, created.text).toBe(201);
    secrets.push(created.body.secret);
  }
  const substrateId = await createExpressionSubstrate(suite.request, user.accessToken, '[s, s, s, s, s, s, s, s, s, s]');
  return { user, substrateId, secrets };
}

async function submitInvoke(token: string, substrateId: string, s: string): Promise<string> {
  const submitted = await suite.request('POST', '/api/v1/jobs', {
    token,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { s } } },
  });
  expect(submitted.status, submitted.text).toBe(202);
  return submitted.body.id;
}

/** The verified event each endpoint at `path` received, in endpoint order. */
async function eventsAt(path: string, secrets: string[]): Promise<WebhookEvent[]> {
  return Promise.all(
    secrets.map(async (secret, i) => {
      const [delivered] = await waitFor(async () => (receiver.at(`${path}/${i}`).length > 0 ? receiver.at(`${path}/${i}`) : null));
      const { body, headers } = delivered as ReceivedRequest;
      return new Webhook(secret).verify(body, headers as Record<string, string>) as WebhookEvent;
    }),
  );
}

const storedPayloadSizes = async (jobId: string) =>
  (
    await suite.app.sql<{ bytes: number }>('select octet_length(payload::text) as bytes from webhook_deliveries where job_id = $1', [jobId])
  ).map((row) => row.bytes);

describe('webhook events of large results', () => {
  it('leaves a result over WEBHOOK_RESULT_MAX_BYTES out of every delivery (result_omitted, its size, a link to read it) and stores each small', async () => {
    const { user, substrateId, secrets } = await customer('/large', 3);
    const jobId = await submitInvoke(user.accessToken, substrateId, 'a'.repeat(1000));

    const events = await eventsAt('/large', secrets);
    const job = await suite.request('GET', `/api/v1/jobs/${jobId}`, { token: user.accessToken });
    expect(job.body.state).toBe('completed');
    const resultBytes = Buffer.byteLength(JSON.stringify(job.body.result));
    expect(resultBytes).toBeGreaterThan(10_000);
    for (const event of events) {
      expect(event.type).toBe('job.completed');
      expect(event.data.job).toMatchObject({
        id: jobId,
        state: 'completed',
        result_omitted: true,
        result_bytes: resultBytes,
        links: { self: `/api/v1/jobs/${jobId}` },
      });
      expect(event.data.job).not.toHaveProperty('result');
    }

    // The link answers the whole result.
    const linked = await suite.request('GET', events[0]!.data.job.links!.self, { token: user.accessToken });
    expect(linked.body.result.result).toEqual(Array(10).fill('a'.repeat(1000)));

    const sizes = await storedPayloadSizes(jobId);
    expect(sizes).toHaveLength(3);
    for (const bytes of sizes) expect(bytes).toBeLessThan(2048);
  });

  it('still carries a result within the limit inline', async () => {
    const { user, substrateId, secrets } = await customer('/small', 1);
    const jobId = await submitInvoke(user.accessToken, substrateId, 'b');

    const [event] = await eventsAt('/small', secrets);
    expect(event!.data.job).toMatchObject({
      id: jobId,
      state: 'completed',
      result: { substrate_id: substrateId, result: Array(10).fill('b') },
      links: { self: `/api/v1/jobs/${jobId}` },
    });
    expect(event!.data.job).not.toHaveProperty('result_omitted');
    const [bytes] = await storedPayloadSizes(jobId);
    expect(bytes).toBeLessThan(2048);
  });
});
