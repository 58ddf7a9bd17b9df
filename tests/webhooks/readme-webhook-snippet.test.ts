import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver, type ReceivedRequest } from './receiver.js';

type Verify = (
  secret: string,
  rawBody: string,
  headers: Record<string, string | string[] | undefined>,
) => {
  type: string;
  data: { job: { id: string; result?: { result?: unknown } } };
};

/**
 * The README's webhook-verification snippet, run as a reader would copy it: the ```js block that starts with
 * `// verify-webhook.mjs` is written to a module file (under .data, so `standardwebhooks` resolves from this
 * project) and imported. Then it must accept real deliveries and refuse forged ones, or the README is wrong.
 */
async function readmeSnippet(): Promise<{ verifyWebhook: Verify; verifyWebhookByHand: Verify }> {
  const readme = fs.readFileSync('README.md', 'utf8');
  const code = /```js\n(\/\/ verify-webhook\.mjs[\s\S]*?)```/.exec(readme)?.[1];
  if (!code) throw new Error('README.md has no ```js block starting with // verify-webhook.mjs');
  const dir = path.resolve('.data/test/readme-snippets');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `verify-webhook-${randomBytes(4).toString('hex')}.mjs`);
  fs.writeFileSync(file, code);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let receiver: Receiver;
let user: TestUser;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  receiver = await Receiver.start();
  user = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

describe("the README's webhook verification", () => {
  it('verifies an endpoint delivery with its whsec_ secret and a webhook_url delivery with the account secret, both ways, and refuses forgeries', async () => {
    const { verifyWebhook, verifyWebhookByHand } = await readmeSnippet();
    const endpoint = await request('POST', '/api/v1/webhooks', {
      token: user.accessToken,
      body: { url: receiver.url('/endpoint'), events: ['job.completed'] },
    });
    expect(endpoint.status, endpoint.text).toBe(201);
    const account = await request('GET', '/api/v1/webhooks/secret', { token: user.accessToken });
    const substrate = await request('POST', '/api/v1/substrates', {
      token: user.accessToken,
      body: { expression_type: 'expression', expression: 'x * y' },
    });
    const job = await request('POST', `/api/v1/substrates/${substrate.body.substrate_id}/invoke`, {
      token: user.accessToken,
      body: { parameters: { x: 5, y: 7 } },
    });
    expect(job.status, job.text).toBe(202);
    // A job's own webhook_url goes with POST /jobs.
    const own = await request('POST', '/api/v1/jobs', {
      token: user.accessToken,
      body: {
        type: 'invoke',
        payload: { substrate_id: substrate.body.substrate_id, parameters: { x: 5, y: 7 } },
        webhook_url: receiver.url('/own'),
      },
    });
    expect(own.status, own.text).toBe(202);

    const first = async (at: string) =>
      (await waitFor(async () => (receiver.at(at).length > 0 ? receiver.at(at) : null)))[0] as ReceivedRequest;
    const toEndpoint = (await waitFor(async () => receiver.at('/endpoint').find((d) => d.body.includes(job.body.id)))) as ReceivedRequest;
    const toOwnUrl = await first('/own');

    for (const verify of [verifyWebhook, verifyWebhookByHand]) {
      const event = verify(endpoint.body.secret, toEndpoint.body, toEndpoint.headers);
      expect(event).toMatchObject({ type: 'job.completed', data: { job: { id: job.body.id } } });
      // The invocation's value is the job result's own `result`.
      expect(event.data.job.result?.result).toBe(35);
      expect(verify(account.body.secret, toOwnUrl.body, toOwnUrl.headers)).toMatchObject({
        type: 'job.completed',
        data: { job: { id: own.body.id } },
      });

      expect(() => verify(account.body.secret, toEndpoint.body, toEndpoint.headers)).toThrow();
      expect(() => verify(endpoint.body.secret, toEndpoint.body.replace('35', '36'), toEndpoint.headers)).toThrow();
      const stale = String(Number(toEndpoint.headers['webhook-timestamp']) - 600);
      expect(() => verify(endpoint.body.secret, toEndpoint.body, { ...toEndpoint.headers, 'webhook-timestamp': stale })).toThrow();
    }
  });
});
