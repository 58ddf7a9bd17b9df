import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { expectProblem } from '../auth/expect-problem.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * A customer's 15 MB `POST /batches` or `POST /jobs/bulk` body is parsed and checked in the batch checker's
 * thread (api/substrate-batch/), not on the API's event loop: another customer's request sent while it is
 * being checked is answered before it. Parsed on the event loop (~300 ms a body), the other request waited
 * behind it: an audit saw another customer's `GET /jobs/:id` at p50 0.6–2.4 s under a loop of such bodies.
 */
const suite = useTestApp({ users: 2 });
let sender: TestUser;
let other: TestUser;
let otherJobPath: string;

beforeAll(async () => {
  [sender, other] = suite.users as [TestUser, TestUser];
  const substrateId = await createExpressionSubstrate(suite.request, other.accessToken, 'x + 1');
  const job = await suite.request('POST', '/api/v1/jobs', {
    token: other.accessToken,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1 } } },
  });
  expect(job.status, job.text).toBe(202);
  otherJobPath = `/api/v1/jobs/${job.body.id as string}`;
});

const substrateId = (i: number) => `0x${i.toString(16).padStart(16, '0')}`;
const parameters = (keys: number, length: number) =>
  Object.fromEntries(Array.from({ length: keys }, (_, k) => [`p_${k}`, String(k).repeat(length).slice(0, length)]));

/** A ~15 MB `POST /batches` body of 10,000 invocations whose last one names no substrate id: a 400 once all of it is checked. */
function bigBatchBody(): string {
  const invocations = Array.from({ length: 10_000 }, (_, i) => ({ substrate_id: substrateId(i), parameters: parameters(20, 60) }));
  invocations[9_999]!.substrate_id = 'not-a-substrate';
  return JSON.stringify({ invocations });
}

/** A ~15 MB `POST /jobs/bulk` body of 1,000 invokes whose last one names no substrate id. */
function bigBulkBody(): string {
  const jobs = Array.from({ length: 1_000 }, (_, i) => ({
    type: 'invoke',
    payload: { substrate_id: substrateId(i), parameters: parameters(95, 150) },
  }));
  jobs[999]!.payload.substrate_id = 'not-a-substrate';
  return JSON.stringify({ jobs });
}

interface Answer {
  status: number;
  body: { errors?: Array<{ field: string }> };
}

/** One request on a connection of its own (no keep-alive), its answer parsed. */
function send(method: string, path: string, token: string, body?: Buffer): { request: http.ClientRequest; answer: Promise<Answer> } {
  let request!: http.ClientRequest;
  const answer = new Promise<Answer>((resolve, reject) => {
    request = http.request(
      `${suite.app.baseUrl}${path}`,
      {
        method,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    request.on('error', reject);
  });
  return { request, answer };
}

const otherCustomersRead = () => {
  const { request, answer } = send('GET', otherJobPath, other.accessToken);
  request.end();
  return answer;
};

/**
 * Sends `body` to `path` as the sender, all but its last byte first; once the API has read those (10 of the
 * other customer's reads answered in between, each over a fresh connection: the API reads the big body between
 * them), sends the last byte and, at once, the other customer's read. Which answer arrived first, and the big one.
 */
async function bigBodyBesideARead(path: string, body: string): Promise<{ order: string[]; big: Answer; read: Answer }> {
  const bytes = Buffer.from(body);
  const order: string[] = [];
  const big = send('POST', path, sender.accessToken, bytes);
  await new Promise<void>((resolve, reject) => big.request.write(bytes.subarray(0, -1), (error) => (error ? reject(error) : resolve())));
  for (let i = 0; i < 10; i++) expect((await otherCustomersRead()).status).toBe(200);
  big.request.end(bytes.subarray(-1));
  const read = otherCustomersRead();
  const answers = [big.answer.then(() => order.push('big request')), read.then(() => order.push("other customer's read"))];
  await Promise.all(answers);
  return { order, big: await big.answer, read: await read };
}

describe('a 15 MB body is parsed and checked off the event loop', () => {
  it("answers another customer's GET /jobs/:id before a 15 MB POST /batches sent just before it, which keeps its 400", async () => {
    const { order, big, read } = await bigBodyBesideARead('/api/v1/batches', bigBatchBody());
    expect(big.status).toBe(400);
    expect(big.body.errors).toEqual([expect.objectContaining({ field: 'body.invocations.9999.substrate_id' })]);
    expect(read.status).toBe(200);
    expect(order).toEqual(["other customer's read", 'big request']);
  });

  it("answers another customer's GET /jobs/:id before a 15 MB POST /jobs/bulk sent just before it, which keeps its 400", async () => {
    const { order, big, read } = await bigBodyBesideARead('/api/v1/jobs/bulk', bigBulkBody());
    expect(big.status).toBe(400);
    expect(big.body.errors).toEqual([expect.objectContaining({ field: 'jobs[999].payload.substrate_id' })]);
    expect(read.status).toBe(200);
    expect(order).toEqual(["other customer's read", 'big request']);
  });

  it('compares a large POST /batches with its Idempotency-Key as sent: the same body in another key order replays, another body is 422', async () => {
    // Over the 64 KiB checked on the event loop: checked in the thread, which hands back the payload, not the body.
    const invocations = Array.from({ length: 2_000 }, (_, i) => ({
      substrate_id: substrateId(i),
      parameters: { x: i, y: 'y'.repeat(50) },
    }));
    const reordered = invocations.map(({ substrate_id, parameters }) => ({ parameters, substrate_id }));
    const changed = invocations.map((invocation, i) => (i === 1_999 ? { ...invocation, parameters: { x: -1 } } : invocation));
    const post = (body: unknown) =>
      suite.request('POST', '/api/v1/batches', { token: sender.accessToken, body, headers: { 'idempotency-key': 'large-batch-key' } });
    const first = await post({ invocations });
    expect(first.status, first.text).toBe(202);
    const again = await post({ invocations: reordered });
    expect(again.status, again.text).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    const other = await post({ invocations: changed });
    expect(other.status, other.text).toBe(422);
    expect(other.body.errors).toEqual([{ field: 'header.idempotency-key', message: 'reused with a different body' }]);
  });

  it('answers a body declared in a charset that is not UTF 415 naming header.content-type, small or large', async () => {
    const small = JSON.stringify({ invocations: [{ substrate_id: substrateId(1) }] });
    for (const [path, body] of [
      ['/api/v1/batches', small],
      ['/api/v1/batches', bigBatchBody()],
      ['/api/v1/jobs/bulk', JSON.stringify({ jobs: [{ type: 'invoke', payload: { substrate_id: substrateId(1) } }] })],
    ] as const) {
      const refused = await suite.request('POST', path, {
        token: sender.accessToken,
        headers: { 'content-type': 'application/json; charset=latin1' },
        rawBody: body,
      });
      expectProblem(refused, 415, 'unsupported-media-type', ['header.content-type']);
    }
  });

  it('answers bad large bodies (checked in the thread) as it answers small ones: malformed 400, a forbidden type 403, the bulk header 400, too many 422', async () => {
    // ~100 KB of padding puts a body past the 64 KiB checked on the event loop.
    const padding = { p: 'x'.repeat(15_000) };
    const paddedJob = (type: string) => ({ type, payload: { substrate_id: substrateId(1), parameters: padding } });
    const cases: Array<{ path: string; body: string; headers?: Record<string, string>; expect: [number, string, string[]] }> = [
      { path: '/api/v1/batches', body: bigBatchBody().slice(0, -2), expect: [400, 'validation', ['body']] },
      { path: '/api/v1/jobs/bulk', body: bigBulkBody().slice(0, -2), expect: [400, 'validation', ['body']] },
      {
        path: '/api/v1/jobs/bulk',
        body: JSON.stringify({ jobs: [paddedJob('invoke'), { type: 'billing', payload: {} }, ...Array(6).fill(paddedJob('invoke'))] }),
        expect: [403, 'forbidden', []],
      },
      {
        path: '/api/v1/jobs/bulk',
        body: JSON.stringify({ jobs: Array(7).fill(paddedJob('invoke')) }),
        headers: { 'idempotency-key': 'one-for-all' },
        expect: [400, 'validation', ['header.idempotency-key']],
      },
      {
        path: '/api/v1/jobs/bulk',
        body: JSON.stringify({
          jobs: Array(1_001).fill({ type: 'invoke', payload: { substrate_id: substrateId(1), parameters: { p: 'x'.repeat(60) } } }),
        }),
        expect: [422, 'unprocessable', ['jobs']],
      },
    ];
    for (const {
      path,
      body,
      headers,
      expect: [status, type, fields],
    } of cases) {
      expect(body.length).toBeGreaterThan(64 * 1024);
      const answer = await suite.request('POST', path, { token: sender.accessToken, headers, rawBody: body });
      if (fields.length > 0) expectProblem(answer, status, type, fields);
      else expect([answer.status, answer.body.type]).toEqual([status, expect.stringContaining(type)]);
    }
  });
});
