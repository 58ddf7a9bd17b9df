import { request as httpRequest } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, jwtClaims } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * A large-body route (`POST /substrates/batch`, `/jobs/bulk`, `/batches`, `/admin/usage/ingest`) learns
 * whether a customer sent the request before it reads the body. A customer's batch is parsed once, in the
 * batch checker's thread; a body sent without valid credentials is read and syntax-checked there one at a
 * time per API process (malformed → 400, else 401), and past that answered 401 unread, so strangers never
 * fill the thread's queue of customers' batches nor parse on the API's event loop.
 */
const suite = useTestApp({ users: 3 });
let token: string;
let other: string;

beforeAll(() => {
  token = (suite.users[0] as TestUser).accessToken;
  other = (suite.users[1] as TestUser).accessToken;
});

const checker = () => suite.app.deps.batchChecker;

/** A ~10 MB well-formed batch body: 1,000 expressions, each with 60 metadata keys. */
function bigBatchBody(): string {
  const metadata = Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`key_${k}_${'m'.repeat(20)}`, 'v'.repeat(150)]));
  const substrates = Array.from({ length: 1000 }, (_, i) => ({ expression_type: 'expression', expression: `x * ${i} + y`, metadata }));
  return JSON.stringify({ substrates });
}
const wellFormed = bigBatchBody();
const malformed = wellFormed.slice(0, -1);

/** Credentials that authenticate no one: none, a bearer token that is no JWT, an API key no one holds. */
const strangers: Array<Record<string, string>> = [
  {},
  { authorization: 'Bearer not-a-token' },
  { authorization: `Bearer sk_live_${'x'.repeat(43)}` },
];

const postRaw = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${suite.app.baseUrl}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  }).then(async (response) => {
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : undefined };
  });

const oneSubstrate = { substrates: [{ expression_type: 'expression', expression: 'x + 1' }] };

/** Counts JSON.parse calls on this thread (the API's) over `minLength` characters while `work` runs. */
async function bigParses<T>(minLength: number, work: () => Promise<T>): Promise<{ result: T; parses: number }> {
  const { parse } = JSON;
  let parses = 0;
  JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
    if (typeof text === 'string' && text.length >= minLength) parses++;
    return parse(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { result: await work(), parses };
  } finally {
    JSON.parse = parse;
  }
}

/** Starts a POST of `body` without credentials and sends its first half only; `finish` sends the rest and answers. */
function halfSent(path: string, body: string) {
  const bytes = Buffer.from(body);
  const finishers: Array<() => void> = [];
  const answer = new Promise<{ status: number; body: { errors?: Array<{ field: string }> } }>((resolve, reject) => {
    const request = httpRequest(
      `${suite.app.baseUrl}/api/v1${path}`,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    request.on('error', reject);
    request.write(bytes.subarray(0, bytes.length >> 1));
    finishers.push(() => request.end(bytes.subarray(bytes.length >> 1)));
  });
  return {
    answer,
    finish() {
      finishers.forEach((finish) => finish());
      return answer;
    },
  };
}

describe('bodies sent without valid credentials to the large-body routes', () => {
  it(
    "answers a customer's batch 201 while strangers' 10 MB bodies arrive, reading and checking one of them at a time",
    { timeout: 120_000 },
    async () => {
      const before = checker().counts;
      const count = 24;
      let answered = 0;
      const sent = Array.from({ length: count }, (_, i) =>
        postRaw('/substrates/batch', i % 2 ? malformed : wellFormed, strangers[i % strangers.length]).then((answer) => {
          answered++;
          return { ...answer, malformed: i % 2 === 1 };
        }),
      );
      // Every stranger's body has been answered, or waits for the checker's thread, or is in it.
      await waitFor(async () => answered + checker().queued + 1 >= count, 60_000);
      const batch = await suite.request('POST', '/api/v1/substrates/batch', { token, body: oneSubstrate });
      expect(batch.status, JSON.stringify(batch.body)).toBe(201);

      const answers = await Promise.all(sent);
      for (const answer of answers) {
        // A malformed body is checked (400) when a place is free, else answered 401 unread; a well-formed one always 401.
        expect(answer.malformed ? [400, 401] : [401]).toContain(answer.status);
        expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        if (answer.status === 400) expect(answer.body.errors).toEqual([{ field: 'body', message: 'malformed JSON' }]);
      }
      const after = checker().counts;
      const checked = after.anonymousChecks - before.anonymousChecks;
      expect(checked).toBeGreaterThan(0);
      expect(checked + after.anonymousTurnedAway - before.anonymousTurnedAway).toBe(count);
      expect(after.anonymousPeak).toBe(1);
      expect(answers.filter((answer) => answer.status === 400).length).toBeLessThanOrEqual(checked);
      // The customer's batch was one task in the thread: parsed once.
      expect(after.batchChecks - before.batchChecks).toBe(1);
    },
  );

  it("answers a stranger 401 unread while another stranger's body is being read, and checks the next once it is done", async () => {
    const first = halfSent('/jobs/bulk', malformed);
    await waitFor(async () => checker().anonymousUnderWay === 1);
    const before = checker().counts;

    for (const headers of strangers) {
      expectProblem(await postRaw('/substrates/batch', malformed, headers), 401, 'unauthorized');
      expectProblem(await postRaw('/batches', malformed, headers), 401, 'unauthorized');
    }
    expect(checker().counts.anonymousTurnedAway - before.anonymousTurnedAway).toBe(2 * strangers.length);
    // Customers are not held up by it, nor refused for it.
    const batch = await suite.request('POST', '/api/v1/substrates/batch', { token: other, body: oneSubstrate });
    expect(batch.status).toBe(201);

    const answer = await first.finish();
    expect(answer.status).toBe(400);
    expect(answer.body.errors).toEqual([{ field: 'body', message: 'malformed JSON' }]);
    expect(checker().counts.anonymousChecks - before.anonymousChecks).toBe(1);
    await waitFor(async () => checker().anonymousUnderWay === 0);
    expectProblem(await postRaw('/substrates/batch', malformed), 400, 'validation', ['body']);
  });

  it(
    "never parses a stranger's 10 MB /jobs/bulk or /batches body on the API's event loop: malformed 400, well-formed 401",
    { timeout: 60_000 },
    async () => {
      const { result, parses } = await bigParses(1_000_000, async () => {
        const answers = [];
        for (const path of ['/jobs/bulk', '/batches']) {
          answers.push(await postRaw(path, malformed), await postRaw(path, wellFormed, strangers[1]));
        }
        return answers;
      });
      expect(parses).toBe(0);
      expectProblem(result[0]!, 400, 'validation', ['body']);
      expectProblem(result[1]!, 401, 'unauthorized');
      expectProblem(result[2]!, 400, 'validation', ['body']);
      expectProblem(result[3]!, 401, 'unauthorized');
    },
  );

  it('answers a stranger 413 past the limit and 415 for a non-UTF charset, as before, and gives the place back', async () => {
    expectProblem(await postRaw('/jobs/bulk', `"${'x'.repeat(16 * 1024 * 1024)}"`), 413, 'payload-too-large');
    expectProblem(await postRaw('/substrates/batch', `"${'x'.repeat(16 * 1024 * 1024)}"`), 413, 'payload-too-large');
    const charset = await postRaw('/jobs/bulk', '{}', { 'content-type': 'application/json; charset=latin1' });
    expectProblem(charset, 415, 'unsupported-media-type');
    expect(checker().anonymousUnderWay).toBe(0);
    // A stranger's request without a body is answered by authentication, as any.
    expectProblem(await postRaw('/jobs/bulk', ''), 401, 'unauthorized');
  });

  it('treats a customer who has not accepted the terms as a stranger: malformed 400 checked off the event loop, else 403', async () => {
    const user = suite.users[2] as TestUser;
    const { sub, cid } = jwtClaims(user.accessToken) as { sub: string; cid: string };
    await suite.app.sql('delete from tos_acceptances where user_id = $1', [sub]);
    await suite.app.deps.principals.invalidateCustomer(cid);
    const before = checker().counts;
    const headers = { authorization: `Bearer ${user.accessToken}` };
    expectProblem(await postRaw('/jobs/bulk', '{"jobs": [', headers), 400, 'validation', ['body']);
    expectProblem(await postRaw('/jobs/bulk', '{"jobs": []}', headers), 403, 'tos-required');
    expectProblem(await postRaw('/substrates/batch', JSON.stringify(oneSubstrate), headers), 403, 'tos-required');
    const after = checker().counts;
    expect(after.anonymousChecks - before.anonymousChecks).toBe(3);
    expect(after.batchChecks - before.batchChecks).toBe(0);
  });

  it("parses a customer's batch once, in the thread: malformed JSON answers the same 400 naming body from there", async () => {
    const before = checker().counts;
    // A substrate of its own: one an earlier test created would answer 200 (nothing new).
    const fresh = { substrates: [{ expression_type: 'expression', expression: 'x + 2' }] };
    const created = await postRaw('/substrates/batch', JSON.stringify(fresh), { authorization: `Bearer ${token}` });
    expect(created.status).toBe(201);
    expectProblem(await postRaw('/substrates/batch', '{"substrates": [', { authorization: `Bearer ${token}` }), 400, 'validation', [
      'body',
    ]);
    const after = checker().counts;
    expect(after.batchChecks - before.batchChecks).toBe(2);
    expect(after.anonymousChecks - before.anonymousChecks).toBe(0);
  });

  it("keeps a customer's /jobs/bulk body as before: malformed 400, well-formed checked by the route", async () => {
    const before = checker().counts;
    expectProblem(await postRaw('/jobs/bulk', '{"jobs": [', { authorization: `Bearer ${token}` }), 400, 'validation', ['body']);
    expectProblem(await postRaw('/jobs/bulk', '{"jobs": "none"}', { authorization: `Bearer ${token}` }), 400, 'validation', ['jobs']);
    expect(checker().counts.anonymousChecks - before.anonymousChecks).toBe(0);
  });
});
