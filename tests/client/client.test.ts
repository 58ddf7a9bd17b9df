import { beforeAll, describe, expect, it } from 'vitest';
import { ChrysalisClient, ChrysalisProblem, isJob, verifyWebhook, WebhookVerificationError, type JobEvent } from '@chrysalis/client';
import { signatureHeaders, newWebhookSecret } from '../../lib/webhooks/signing.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

const suite = useTestApp({ workers: true, users: 2 });
let alice: ChrysalisClient;
let bob: ChrysalisClient;
let substrateId: string;

beforeAll(async () => {
  const [a, b] = suite.users as [TestUser, TestUser];
  alice = new ChrysalisClient({ baseUrl: suite.app.baseUrl, token: a.accessToken });
  bob = new ChrysalisClient({ baseUrl: suite.app.baseUrl, token: b.accessToken });
  substrateId = await createExpressionSubstrate(suite.request, a.accessToken, 'x * y');
});

/** A fetch that answers from a script (no server), recording each request. */
function scriptedFetch(answers: Array<(request: Request) => Response>) {
  const requests: Request[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push(request);
    const answer = answers.shift();
    if (!answer) throw new Error(`unexpected request ${request.method} ${request.url}`);
    return answer(request);
  };
  return { fetch: fetch as typeof globalThis.fetch, requests };
}

const sse = (text: string, status = 200) => new Response(text, { status, headers: { 'content-type': 'text/event-stream' } });

describe('the typed client', () => {
  it('submits with Prefer: wait and gets the finished job; run() returns it completed', async () => {
    const answered = await alice.submit(
      { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 6, y: 7 } } },
      { waitSeconds: 10 },
    );
    expect(isJob(answered) && answered.state).toBe('completed');
    const job = await alice.run({ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 2, y: 21 } } });
    expect(job).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('waitFor() polls a delayed job with backoff until it is final', async () => {
    const accepted = await alice.submit({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: 3, y: 3 } },
      delay_ms: 1500,
    });
    expect(accepted.state).toBe('delayed');
    const seen: string[] = [];
    const job = await alice.waitFor(accepted.id, { onUpdate: (update) => seen.push(update.state), timeoutMs: 30_000 });
    expect(job).toMatchObject({ id: accepted.id, state: 'completed', result: { result: 9 } });
    expect(seen[0]).toBe('delayed');
    expect(seen.at(-1)).toBe('completed');
  });

  it('throws problem+json answers as ChrysalisProblem with type, status and field errors', async () => {
    const error = await alice.submit({ type: 'invoke', payload: { substrate_id: 'not-an-id' } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ChrysalisProblem);
    expect(error).toMatchObject({ type: 'validation', status: 400 });
    expect((error as ChrysalisProblem).errors.map((field) => field.field)).toContain('body.payload.substrate_id');
  });

  it("answers another customer's job as a not-found problem", async () => {
    const job = await alice.submit({ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } } });
    await expect(bob.getJob(job.id)).rejects.toMatchObject({ name: 'ChrysalisProblem', type: 'not-found', status: 404 });
  });

  it('events() iterates a job’s Server-Sent Events and ends at its final state', async () => {
    const accepted = await alice.submit({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: 5, y: 5 } },
      delay_ms: 1000,
    });
    const events: JobEvent[] = [];
    for await (const event of alice.events(accepted.id)) events.push(event);
    expect(events[0]).toMatchObject({ event: 'state', data: { state: 'delayed' } });
    expect(events.at(-1)).toMatchObject({ event: 'state', id: 'final', data: { state: 'completed', result: { result: 25 } } });
  });

  it('events() reconnects after the stream drops, sending Last-Event-ID, and stops at a 204', async () => {
    const { fetch, requests } = scriptedFetch([
      () => sse('id: 7\nevent: state\ndata: {"id":"j","state":"queued"}\n\nretry: 10\n\n'),
      () => sse('event: state\ndata: {"id":"j","state":"active"}\n\n'),
      () => new Response(null, { status: 204 }),
    ]);
    const client = new ChrysalisClient({ baseUrl: 'http://127.0.0.1:9', token: 't', fetch });
    const states: string[] = [];
    for await (const event of client.events('j')) states.push(event.data.state);
    expect(states).toEqual(['queued', 'active']);
    expect(requests.map((request) => request.headers.get('last-event-id'))).toEqual([null, '7', '7']);
    expect(requests[0]!.headers.get('authorization')).toBe('Bearer t');
  });

  it('waits out a 429 with Retry-After and sends the request again, body and all', async () => {
    const job = {
      id: '0191d3a8-0000-7000-8000-000000000001',
      type: 'invoke',
      state: 'queued',
      created_at: new Date().toISOString(),
      links: { self: '/x' },
    };
    const limited = () =>
      new Response(
        JSON.stringify({
          type: 'https://chrysalis.dev/problems/rate-limited',
          title: 'Too many requests',
          status: 429,
          detail: 'slow down',
        }),
        { status: 429, headers: { 'retry-after': '1', 'content-type': 'application/problem+json' } },
      );
    const { fetch, requests } = scriptedFetch([
      limited,
      () => new Response(JSON.stringify(job), { status: 202, headers: { 'content-type': 'application/json' } }),
    ]);
    const waits: number[] = [];
    const client = new ChrysalisClient({ baseUrl: 'http://127.0.0.1:9', fetch, rateLimit: { onWait: (ms) => waits.push(ms) } });
    await expect(client.submit({ type: 'invoke', payload: { substrate_id: substrateId } })).resolves.toMatchObject({ id: job.id });
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(await requests[1]!.json()).toMatchObject({ type: 'invoke' });

    const { fetch: stubborn } = scriptedFetch([limited, limited]);
    const impatient = new ChrysalisClient({ baseUrl: 'http://127.0.0.1:9', fetch: stubborn, rateLimit: { maxWaits: 1 } });
    await expect(impatient.getJob(job.id)).rejects.toMatchObject({ type: 'rate-limited', status: 429, retryAfterSeconds: 1 });
  });

  it('batch() reports progress until every item ended and lists the failed items by index', async () => {
    const invocations = Array.from({ length: 300 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 2 } }));
    invocations[17] = { substrate_id: '0x0000000000000001', parameters: { x: 1, y: 1 } };
    invocations[250] = { substrate_id: substrateId, parameters: { x: 1 } as never };
    const progress: number[] = [];
    const outcome = await alice.batch(invocations, {
      pollMs: 100,
      onProgress: (counts) => progress.push(counts.completed + counts.failed),
    });
    expect(outcome).toMatchObject({ total: 300, completed: 298, failed: 2 });
    expect(outcome.failedItems.map((item) => item.index)).toEqual([17, 250]);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(300);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('submitBulk() accepts jobs in request order, and refuses a bad list whole naming the job', async () => {
    const jobs = [1, 2, 3].map((x) => ({ type: 'invoke' as const, payload: { substrate_id: substrateId, parameters: { x, y: 10 } } }));
    const accepted = await alice.submitBulk(jobs);
    expect(accepted).toHaveLength(3);
    const finished = await Promise.all(accepted.map((job) => alice.waitFor(job.id)));
    expect(finished.map((job) => (job.result as { result: number }).result)).toEqual([10, 20, 30]);
    const refused = await alice
      .submitBulk([...jobs, { type: 'invoke', payload: { substrate_id: 'nope' } }])
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ChrysalisProblem);
    expect(refused).toMatchObject({
      status: 400,
      type: 'validation',
      errors: [expect.objectContaining({ field: 'jobs[3].payload.substrate_id' })],
    });
  });

  it('retry() runs a cancelled job again as a new job whose retry_of is the original', async () => {
    const delayed = await alice.submit({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: 4, y: 4 } },
      delay_ms: 3_600_000,
    });
    expect((await alice.cancel(delayed.id)).state).toBe('cancelled');
    const retried = await alice.retry(delayed.id);
    expect(retried.id).not.toBe(delayed.id);
    expect(retried.retry_of).toBe(delayed.id);
    expect((await alice.getJob(delayed.id)).state).toBe('cancelled');
  });

  it('verifyWebhook() returns a delivery signed the way the platform signs, and refuses a forged or stale one', () => {
    const secret = newWebhookSecret();
    const body = JSON.stringify({
      type: 'job.completed',
      timestamp: new Date().toISOString(),
      data: { job: { id: 'j', state: 'completed' } },
    });
    const headers = signatureHeaders(secret, 'msg_1', body);
    expect(verifyWebhook(secret, body, headers)).toMatchObject({ type: 'job.completed', data: { job: { id: 'j' } } });
    expect(verifyWebhook(secret, Buffer.from(body), new Headers({ ...headers }))).toMatchObject({ type: 'job.completed' });
    expect(() => verifyWebhook(secret, body.replace('completed', 'failed'), headers)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(newWebhookSecret(), body, headers)).toThrow(WebhookVerificationError);
    const stale = signatureHeaders(secret, 'msg_1', body, new Date(Date.now() - 10 * 60_000));
    expect(() => verifyWebhook(secret, body, stale)).toThrow(WebhookVerificationError);
  });
});
