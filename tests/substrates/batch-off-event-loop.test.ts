import { monitorEventLoopDelay } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * POST /substrates/batch's CPU work — parsing its body, checking its items, compiling its expressions,
 * serialising its rows — runs in the batch checker's thread (api/substrate-batch/), not on the API's
 * event loop. The API runs in this process, so what this thread parses or serialises, the API did.
 */
const suite = useTestApp({ users: 2 });
let token: string;
let other: string;

beforeAll(() => {
  token = (suite.users[0] as TestUser).accessToken;
  other = (suite.users[1] as TestUser).accessToken;
});

/** A ~10 MB batch body: 1,000 distinct ~2.6 KB expressions, each with 60 metadata keys (~7.8 KB). */
function bigBatchBody(tag: string): string {
  const expression = Array.from({ length: 150 }, (_, i) => `(x${i} * ${i} + y)`).join(' + ');
  const metadata = Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`key_${k}_${'m'.repeat(20)}`, 'v'.repeat(100)]));
  const substrates = Array.from({ length: 1000 }, (_, i) => ({
    expression_type: 'expression',
    expression: `${expression} + ${i} + ${tag.length}`,
    metadata,
  }));
  return JSON.stringify({ substrates });
}

/** Counts JSON.parse and JSON.stringify calls on this thread over `minLength` characters while `work` runs. */
async function bigJsonCalls<T>(minLength: number, work: () => Promise<T>): Promise<{ result: T; calls: string[] }> {
  const { parse, stringify } = JSON;
  const calls: string[] = [];
  JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
    if (typeof text === 'string' && text.length >= minLength) calls.push(`JSON.parse of ${text.length} characters`);
    return parse(text, reviver);
  }) as typeof JSON.parse;
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    const text = stringify(...args);
    if (typeof text === 'string' && text.length >= minLength) calls.push(`JSON.stringify to ${text.length} characters`);
    return text;
  }) as typeof JSON.stringify;
  try {
    return { result: await work(), calls };
  } finally {
    JSON.parse = parse;
    JSON.stringify = stringify;
  }
}

const postRaw = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
  fetch(`${suite.app.baseUrl}/api/v1/substrates/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  }).then(async (response) => ({ status: response.status, headers: response.headers, text: await response.text() }));

const asResponse = (answer: { status: number; headers: Headers; text: string }) => ({ ...answer, body: JSON.parse(answer.text) });

describe('POST /substrates/batch off the event loop', () => {
  it(
    'neither parses nor serialises a 10 MB batch on the API thread, and answers /health while it is checked',
    { timeout: 120_000 },
    async () => {
      const body = bigBatchBody('off-loop');
      const delay = monitorEventLoopDelay({ resolution: 10 });
      let batchAnswered = false;
      const healthWhileChecking: number[] = [];
      const { result, calls } = await bigJsonCalls(1_000_000, async () => {
        delay.enable();
        const batch = postRaw(body, { authorization: `Bearer ${token}` }).finally(() => (batchAnswered = true));
        while (!batchAnswered) {
          const health = await fetch(`${suite.app.baseUrl}/api/v1/health`);
          await health.text();
          if (!batchAnswered) healthWhileChecking.push(health.status);
        }
        const answer = await batch;
        delay.disable();
        return answer;
      });
      console.log(
        `event loop delay during the batch: max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`,
      );
      expect(result.status, result.text.slice(0, 300)).toBe(201);
      expect(calls).toEqual([]);
      expect(healthWhileChecking.length).toBeGreaterThan(0);
      expect(healthWhileChecking.every((status) => status === 200)).toBe(true);
      const answer = JSON.parse(result.text);
      expect(answer.items).toHaveLength(1000);
      expect(answer.created).toBe(1000);
      expect(answer.items[999]).toMatchObject({
        expression_type: 'expression',
        created: true,
        metadata: { key_59_mmmmmmmmmmmmmmmmmmmm: 'v'.repeat(100) },
      });
      expect(Object.keys(answer.items[0])).toEqual([
        'substrate_id',
        'identity',
        'expression_type',
        'metadata',
        'created_at',
        'updated_at',
        'created',
      ]);
    },
  );

  it('answers a repeated item once per place and counts only new rows as created: 201 when one was new, 200 when none was', async () => {
    const one = { expression_type: 'constant', value: 12.5, metadata: { name: 'twelve and a half' } };
    const first = await suite.request('POST', '/api/v1/substrates/batch', { token, body: { substrates: [one, one] } });
    expect(first.status).toBe(201);
    expect(first.body.created).toBe(1);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.items[0]).toEqual(first.body.items[1]);
    expect(first.body.items[0]).toMatchObject({ value: 12.5, metadata: { name: 'twelve and a half' }, created: true });
    const again = await suite.request('POST', '/api/v1/substrates/batch', { token, body: { substrates: [one] } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: 0, items: [{ substrate_id: first.body.items[0].substrate_id, created: false }] });
  });

  it('reads the body as the JSON parser does: a UTF-8 byte order mark, non-ASCII text, a UTF-16 body; bytes that are not UTF-8 refused', async () => {
    const metadata = { name: 'név ✓ 日本 🦋', note: 'ÅÄÖ' };
    const body = JSON.stringify({ substrates: [{ expression_type: 'constant', value: 7, metadata }] });
    const withMark = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body, 'utf8')]);
    const utf8 = asResponse(await postRaw(withMark, { authorization: `Bearer ${token}` }));
    expect(utf8.status, utf8.text).toBe(201);
    expect(utf8.body.items[0].metadata).toEqual(metadata);
    const utf16 = asResponse(
      await postRaw(Buffer.from(body.replace('"value":7', '"value":8'), 'utf16le'), {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json; charset=utf-16le',
      }),
    );
    expect(utf16.status, utf16.text).toBe(201);
    expect(utf16.body.items[0]).toMatchObject({ value: 8, metadata });
    // A byte that is not UTF-8 is refused, as every JSON route refuses it, rather than read as U+FFFD.
    const broken = Buffer.from(JSON.stringify({ substrates: [{ expression_type: 'constant', value: 9, metadata: { name: 'AxB' } }] }));
    broken[broken.indexOf('AxB') + 1] = 0xff;
    const refused = asResponse(await postRaw(broken, { authorization: `Bearer ${token}` }));
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'body', message: 'invalid UTF-8' }]);
  });

  it('answers malformed JSON 400 before authentication, as the JSON parser did, and a well-formed body without credentials 401', async () => {
    expectProblem(asResponse(await postRaw('{"substrates": [')), 400, 'validation', ['body']);
    expectProblem(asResponse(await postRaw('{"substrates": [', { authorization: `Bearer ${token}` })), 400, 'validation', ['body']);
    expectProblem(asResponse(await postRaw('{"substrates": []}')), 401, 'unauthorized');
    const charset = asResponse(await postRaw('{"substrates": []}', { 'content-type': 'application/json; charset=latin1' }));
    expectProblem(charset, 415, 'unsupported-media-type', ['header.content-type']);
    expect(charset.body.detail).toBe('unsupported charset "LATIN1"');
    // A UTF name no decoder knows: the 415 the JSON parser gave, not a decode failure in the thread.
    const unknownUtf = asResponse(
      await postRaw('{"substrates": []}', { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-99' }),
    );
    expectProblem(unknownUtf, 415, 'unsupported-media-type', ['header.content-type']);
    expect(unknownUtf.body.detail).toBe('unsupported charset "UTF-99"');
  });

  it('checks an empty body and a body that is not an object as the whole-body schema did', async () => {
    // An empty body is `{}` to the JSON parser: no list of substrates.
    const empty = await postRaw('', { authorization: `Bearer ${token}` });
    expectProblem(asResponse(empty), 400, 'validation', ['body.substrates']);
    const list = await postRaw('[1, 2]', { authorization: `Bearer ${token}` });
    expectProblem(asResponse(list), 400, 'validation', ['body']);
  });

  it("checks another customer's batch before one customer's second 10 MB batch sent earlier", { timeout: 120_000 }, async () => {
    const order: string[] = [];
    const big = ['a', 'bb'].map((tag) =>
      postRaw(bigBatchBody(tag), { authorization: `Bearer ${token}` }).then((answer) => {
        order.push(`big ${tag}`);
        return answer;
      }),
    );
    // The second big batch waits for the first (its customer's) before it reaches the checker's thread.
    await waitFor(async () => suite.app.deps.batchChecker.waitingBehindOwn === 1, 60_000);
    const small = await suite.request('POST', '/api/v1/substrates/batch', {
      token: other,
      body: { substrates: [{ expression_type: 'expression', expression: 'x + 1' }] },
    });
    order.push('small');
    expect(small.status).toBe(201);
    expect((await Promise.all(big)).map((answer) => answer.status)).toEqual([201, 201]);
    expect(order).toHaveLength(3);
    expect(order.at(-1)).not.toBe('small');
  });
});
