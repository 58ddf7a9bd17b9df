import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;

beforeAll(async () => {
  app = await startTestApp({ TASK_TIMEOUT_MS: '4500' });
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
});

const thousand = Array.from({ length: 1000 }, (_, i) => i);

async function invokeExpressionAs(
  client: ReturnType<typeof httpClient>,
  user: TestUser,
  expression: string,
  parameters: Record<string, unknown>,
) {
  const created = await client('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'expression', expression },
  });
  expect(created.status).toBeLessThan(300);
  return client('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
    token: user.accessToken,
    headers: { prefer: 'wait=20' },
    body: { parameters },
  });
}

const invokeExpression = (expression: string, parameters: Record<string, unknown>) =>
  invokeExpressionAs(request, alice, expression, parameters);

describe('processors that cannot hurt us', () => {
  it('fails a runaway expression at the time limit', async () => {
    const response = await invokeExpression('l.map(a, l.map(b, l.map(c, a * b * c).size())).size()', { l: thousand });
    expect(response.body.state).toBe('failed');
    expect(response.body.error).toMatch(/time limit/);
    expect(response.body.attempts_made).toBe(1);
  });

  it('fails a throwing expression with its own message', async () => {
    const response = await invokeExpression('1 / 0', {});
    expect(response.body.state).toBe('failed');
    expect(response.body.error).toMatch(/division by zero/);
  });

  it('fails an expression whose result PostgreSQL cannot store by itself, while a job beside it completes', async () => {
    const [bad, good] = await Promise.all([invokeExpression('"a\\x00b"', {}), invokeExpression('n * 2', { n: 21 })]);
    expect(bad.body).toMatchObject({ state: 'failed', error: expect.stringMatching(/U\+0000/) });
    expect(bad.body.attempts_made).toBe(1);
    expect(good.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('stores the error of an expression whose message quotes a NUL it computed, and a job beside it completes', async () => {
    const [bad, good] = await Promise.all([invokeExpression('{"a": 1}["b" + "\\x00"]', {}), invokeExpression('n * 3', { n: 14 })]);
    expect(bad.body).toMatchObject({ state: 'failed', error: expect.stringContaining('No such key: b\ufffd') });
    expect(good.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('fails an expression that grows a string to 84 MB with a clear error, and the worker process lives on', async () => {
    const sixteen = Array.from({ length: 16 }, () => 'a').join(' + ');
    // 10 × 16⁵ characters, eight times over, joined: laid out flat on a thread, such a string aborted the whole worker process.
    const expression = `[s]${`.map(a, ${sixteen})`.repeat(5)}.map(a, [a, a, a, a, a, a, a, a].join())[0].size()`;
    const [bad, good] = await Promise.all([invokeExpression(expression, { s: 'abcdefghij' }), invokeExpression('n * 2', { n: 21 })]);
    expect(bad.body).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(/concatenation would hold \d+ characters, over the limit/),
    });
    expect(bad.body.attempts_made).toBe(1);
    expect(good.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('fails an expression that doubles a value with hex() until it splits into 16 Mi items, and the worker process lives on', async () => {
    const sixteen = Array.from({ length: 16 }, () => 'a').join(' + ');
    const mebi = `["0123456789abcdef"]${`.map(a, ${sixteen})`.repeat(4)}[0]`;
    // The list's backing store, grown in one step past the thread's heap, aborted the worker process, and the job,
    // picked up again after each restart, aborted it again.
    const expression = `size(bytes(bytes(bytes(bytes(${mebi}).hex()).hex()).hex()).hex().split('').map(x, x))`;
    const [bad, good] = await Promise.all([invokeExpression(expression, {}), invokeExpression('n * 2', { n: 21 })]);
    expect(bad.body).toMatchObject({ state: 'failed', error: expect.stringMatching(/hex text would hold \d+ characters, over the limit/) });
    expect(good.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('fails an expression whose result nests 3,000 lists deep, and the worker process lives on', async () => {
    // Encoding it for the invocation cache overflowed the worker's stack, outside any job: the process ended.
    const deep = `${'['.repeat(3000)}${']'.repeat(3000)}`;
    const [bad, good] = await Promise.all([invokeExpression('bytes(s).json()', { s: deep }), invokeExpression('n * 2', { n: 21 })]);
    expect(bad.body).toMatchObject({ state: 'failed', error: expect.stringMatching(/result nests deeper than 64 levels/) });
    expect(good.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });

  it('runs the next 100 jobs successfully after those failures', async () => {
    const created = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'n + 1' },
    });
    const ids: string[] = [];
    for (let n = 0; n < 100; n++) {
      const submitted = await request('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
        token: alice.accessToken,
        body: { parameters: { n } },
      });
      ids.push(submitted.body.id);
    }
    const rows = await waitFor(async () => {
      const found = await app.sql<{ state: string; result: { result: number } }>(
        `select state, result from jobs where id = any($1::uuid[])`,
        [ids],
      );
      return found.every((row) => row.state === 'completed') ? found : null;
    }, 30_000);
    expect(rows).toHaveLength(100);
    expect(rows.map((row) => row.result.result).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, n) => n + 1));
  });
});

// Its own platform with a time limit far past the memory limit's reach: on a loaded machine the 64 MB used to be
// reached after 4.5 s, and the expression failed on time instead.
describe('a memory-exploding expression', () => {
  const roomy = useTestApp({ env: { TASK_TIMEOUT_MS: '120000' }, workers: true, users: 1 });

  it('fails at the memory limit, and the next job on that worker completes', { timeout: 150_000 }, async () => {
    const accepted = await invokeExpressionAs(roomy.request, roomy.users[0]!, 'l.map(a, l.map(b, [a, b, a, b, a, b, a, b])).size()', {
      l: thousand,
    });
    const finished = await waitFor(async () => {
      const job = await roomy.request('GET', `/api/v1/jobs/${accepted.body.id}`, { token: roomy.users[0]!.accessToken });
      return job.body.state === 'failed' || job.body.state === 'completed' ? job : null;
    }, 120_000);
    expect(finished.body.state).toBe('failed');
    expect(finished.body.error).toMatch(/memory limit/);
    const next = await invokeExpressionAs(roomy.request, roomy.users[0]!, 'x + 1', { x: 41 });
    expect(next.body).toMatchObject({ state: 'completed', result: { result: 42 } });
  });
});
