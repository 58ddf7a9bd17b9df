import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { bullJob } from '../helpers/queues.js';
import { openSse } from '../helpers/sse.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * SPEC §8 (never a hang): a request that stops arriving is answered 408 once `API_REQUEST_TIMEOUT_MS` has
 * passed (Node's default held it 300 s). The timeout is the request's arrival, not its answer: an event stream
 * and a `Prefer: wait` outlive it. 1 s here, so the tests wait seconds, not minutes.
 */
const timeoutMs = 1000;
// FIFO: the event-stream test promotes a delayed job in BullMQ (fair sharing would hold it in its shard's delayed set).
const suite = useTestApp({ workers: true, users: 1, env: { API_REQUEST_TIMEOUT_MS: String(timeoutMs), FAIR_SHARING: 'false' } });
let token: string;
let port: number;

beforeAll(() => {
  token = (suite.users[0] as TestUser).accessToken;
  port = Number(new URL(suite.app.baseUrl).port);
});

interface Exchange {
  status: number;
  head: string;
  body: string;
  /** From the first byte sent to the server's closing the connection. */
  elapsedMs: number;
}

/**
 * Sends `first` over a raw socket, then `rest` after `restAfterMs` (never, without it), and reads until the
 * server closes the connection (every request here asks it to). Fails past `giveUpMs`.
 */
function exchange(first: string, options: { rest?: string; restAfterMs?: number; giveUpMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(first);
      if (options.rest !== undefined) setTimeout(() => socket.write(options.rest!), options.restAfterMs ?? 0);
    });
    const chunks: Buffer[] = [];
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and the connection still open after ${options.giveUpMs ?? 10_000} ms`));
    }, options.giveUpMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(giveUp);
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body, elapsedMs: performance.now() - started });
    });
  });
}

const substrateBody = JSON.stringify({ expression_type: 'constant', value: 7 });
const postHead = (length: number) =>
  `POST /api/v1/substrates HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${length}\r\nConnection: close\r\n\r\n`;

describe('a request that does not arrive whole in time', () => {
  it('answers a body that stalls (10 of 100 bytes) with 408 within the timeout; a body that arrives, even in parts, as usual', async () => {
    const stalled = await exchange(postHead(100) + '{"expressi');
    expect(stalled.status, stalled.head).toBe(408);
    expect(stalled.head).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(stalled.body)).toMatchObject({ status: 408, type: expect.stringMatching(/\/request-timeout$/) });
    // Node checks every 100 ms here (a tenth of the timeout): the answer comes soon after the timeout, not before it.
    expect(stalled.elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(stalled.elapsedMs).toBeLessThan(timeoutMs + 1500);

    const whole = await exchange(postHead(Buffer.byteLength(substrateBody)) + substrateBody);
    expect(whole.status, whole.body).toBe(201);
    const inParts = await exchange(postHead(Buffer.byteLength(substrateBody)) + substrateBody.slice(0, 10), {
      rest: substrateBody.slice(10),
      restAfterMs: timeoutMs / 4,
    });
    expect(inParts.status, inParts.body).toBe(200); // the same constant again: it exists
  });

  it('answers headers that stall with 408 too', async () => {
    const stalled = await exchange(`GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: `);
    expect(stalled.status, stalled.head).toBe(408);
    expect(stalled.elapsedMs).toBeLessThan(timeoutMs + 1500);
    const whole = await exchange(`GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    expect(whole.status).toBe(200);
  });
});

describe('an answer that takes longer than the request timeout', () => {
  it('keeps an event stream open past it', async () => {
    const submitted = await suite.request('POST', '/api/v1/jobs', {
      token,
      body: { type: 'divide', payload: { substrate_id: await constantId() }, delay_ms: 3_600_000 },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const stream = await openSse(`${suite.app.baseUrl}/api/v1/jobs/${submitted.body.id}/events`, { token });
    expect(stream.status).toBe(200);
    expect((await stream.next())?.data.state).toBe('delayed');
    // Time itself is what is tested: the stream must outlive the request timeout twice over.
    await sleep(timeoutMs * 2.5);
    await (await bullJob(suite.app.deps.queues, 'divide', submitted.body.id))!.promote();
    const rest = await stream.rest();
    expect(rest.at(-1)?.data.state).toBe('completed');
  });

  it('answers Prefer: wait=3 after its wait, with the job still delayed (202), not cut off at the timeout', async () => {
    const started = performance.now();
    const waited = await suite.request('POST', '/api/v1/jobs', {
      token,
      headers: { prefer: 'wait=3' },
      body: { type: 'divide', payload: { substrate_id: await constantId() }, delay_ms: 3_600_000 },
    });
    expect(waited.status, waited.text).toBe(202);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2900);
  });
});

describe('an HTTP/1.1 request without Host', () => {
  it('answers 400 problem+json naming header.host; with Host, or in HTTP/1.0, it is served', async () => {
    const missing = await exchange(`GET /api/v1/health HTTP/1.1\r\nConnection: close\r\n\r\n`);
    expect(missing.status, missing.head).toBe(400);
    expect(missing.head).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(missing.body)).toMatchObject({ status: 400, errors: [{ field: 'header.host', message: 'missing' }] });
    expect((await exchange(`GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)).status).toBe(200);
    const old = await exchange(`GET /api/v1/health HTTP/1.0\r\n\r\n`);
    expect(old.head).toMatch(/^HTTP\/1\.1 200/);
  });
});

let constant: string | undefined;
/** The test's one substrate (a constant), made on first use. */
async function constantId(): Promise<string> {
  constant ??= (await suite.request('POST', '/api/v1/substrates', { token, body: JSON.parse(substrateBody) })).body.substrate_id as string;
  return constant;
}
