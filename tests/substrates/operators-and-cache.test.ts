import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let ten: string;
let negative: string;
let product: string;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  const create = async (body: unknown) =>
    (await request('POST', '/api/v1/substrates', { token: alice.accessToken, body })).body.substrate_id as string;
  ten = await create({ expression_type: 'constant', value: 10 });
  negative = await create({ expression_type: 'constant', value: -16 });
  product = await create({ expression_type: 'expression', expression: 'x * y' });
});

afterAll(async () => {
  await app?.close();
});

const operate = (id: string, op: string, body: unknown) =>
  request('POST', `/api/v1/substrates/${id}/${op}`, { token: alice.accessToken, headers: { prefer: 'wait=5' }, body });

describe('operators', () => {
  it('adds and subtracts, on expression values with parameters too', async () => {
    expect((await operate(ten, 'add', { value: 5 })).body.result).toEqual({ original_value: 10, new_value: 15, operation: 'add' });
    expect((await operate(product, 'subtract', { value: 1, parameters: { x: 3, y: 4 } })).body.result).toEqual({
      original_value: 12,
      new_value: 11,
      operation: 'subtract',
    });
  });

  it('answers modulus, power and root', async () => {
    expect((await operate(ten, 'modulus', { modulus: 3 })).body.result).toEqual({ value: 10, modulus: 3, expressed: 1, residue: 9 });
    expect((await operate(ten, 'power', { exponent: 3 })).body.result).toEqual({ value: 10, exponent: 3, result: 1000 });
    expect((await operate(ten, 'root', { degree: 1 })).body.result).toEqual({ value: 10, degree: 1, result: 10 });
  });

  it('multiplies dimension values without a substrate', async () => {
    const response = await request('POST', '/api/v1/substrates/multiply', {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { dimension_values: [2, 3, 7] },
    });
    expect(response.status).toBe(200);
    expect(response.body.result).toEqual({ unity_value: 42, operation: 'multiply', dimensions_collapsed: 3 });
  });

  it.each([
    ['modulus 0', () => operate(ten, 'modulus', { modulus: 0 }), /modulus must not be 0/],
    ['an even root of a negative', () => operate(negative, 'root', { degree: 2 }), /even root/],
    ['a non-finite power', () => operate(ten, 'power', { exponent: 1000 }), /finite/],
  ])('fails %s with a clear error and no retry', async (_name, call, message) => {
    const response = await call();
    expect(response.status).toBe(200);
    expect(response.body.state).toBe('failed');
    expect(response.body.error).toMatch(message);
    expect(response.body.attempts_made).toBe(1);
  });

  it('rejects a missing or non-numeric operand with 400 naming the field', async () => {
    const missing = await operate(ten, 'add', {});
    expect(missing.status).toBe(400);
    expect(missing.body.errors[0].field).toBe('body.value');
    const text = await operate(ten, 'power', { exponent: 'two' });
    expect(text.body.errors[0].field).toBe('body.exponent');
    const empty = await request('POST', '/api/v1/substrates/multiply', { token: alice.accessToken, body: { dimension_values: [] } });
    expect(empty.status).toBe(400);
  });
});

describe('CEL % on parameters', () => {
  it('invokes x % y with JSON numbers (doubles), and fails x % 0 with a clear error and no retry', async () => {
    const created = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x % y' },
    });
    expect(created.status, created.text).toBe(201);
    const invoke = (parameters: Record<string, unknown>) =>
      request('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
        token: alice.accessToken,
        headers: { prefer: 'wait=5' },
        body: { parameters },
      });
    const remainder = await invoke({ x: -7, y: 3 });
    expect(remainder.status).toBe(200);
    expect(remainder.body).toMatchObject({ state: 'completed', result: { result: -1 } });
    const byZero = await invoke({ x: 7, y: 0 });
    expect(byZero.status).toBe(200);
    expect(byZero.body).toMatchObject({ state: 'failed', attempts_made: 1, error: expect.stringMatching(/modulo by zero/) });
  });
});

describe('invocation cache', () => {
  const invoke = (id: string, parameters: Record<string, unknown>) =>
    request('POST', `/api/v1/substrates/${id}/invoke`, { token: alice.accessToken, headers: { prefer: 'wait=5' }, body: { parameters } });

  it('serves a repeated invocation from the cache, keyed by canonical parameters', async () => {
    const first = await invoke(product, { x: 4, y: 5 });
    expect(first.body.result).toMatchObject({ result: 20, cached: false });
    const second = await invoke(product, { y: 5, x: 4 });
    expect(second.body.result).toMatchObject({ result: 20, cached: true });
    expect(second.headers.get('preference-applied')).toBe('wait=5');
    const other = await invoke(product, { x: 4, y: 6 });
    expect(other.body.result).toMatchObject({ result: 24, cached: false });
  });

  it('records a job answered from the cache, and without Prefer: wait runs it through a worker', async () => {
    await invoke(product, { x: 7, y: 7 });
    const hit = await invoke(product, { x: 7, y: 7 });
    expect(hit.body.result.cached).toBe(true);
    const recorded = await request('GET', `/api/v1/jobs/${hit.body.id}`, { token: alice.accessToken });
    expect(recorded.body).toMatchObject({ state: 'completed', result: { result: 49, cached: true } });
    const queued = await request('POST', `/api/v1/substrates/${product}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 7, y: 7 } },
    });
    expect(queued.status).toBe(202);
  });

  it("answers a cache hit with the same created, started and finished times as the job's stored record", async () => {
    // The invocation answered by a worker is the good case: its 200 is read from the row, so the two always agreed.
    const miss = await invoke(product, { x: 6, y: 9 });
    expect(miss.body.result.cached).toBe(false);
    const hit = await invoke(product, { x: 6, y: 9 });
    expect(hit.body.result.cached).toBe(true);
    for (const answer of [miss, hit]) {
      const recorded = await request('GET', `/api/v1/jobs/${answer.body.id}`, { token: alice.accessToken });
      expect(recorded.status).toBe(200);
      const times = ({ created_at, started_at, finished_at }: Record<string, unknown>) => ({ created_at, started_at, finished_at });
      expect(times(answer.body)).toEqual(times(recorded.body));
    }
  });

  it('never serves one customer the cached results of another', async () => {
    const mallory = await registerUser(request);
    await invoke(product, { x: 8, y: 8 });
    const stolen = await request('POST', `/api/v1/substrates/${product}/invoke`, {
      token: mallory.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 8, y: 8 } },
    });
    expect(stolen.status).toBe(404);
  });

  it('drops cached results when the substrate changes or is deleted', async () => {
    await invoke(product, { x: 2, y: 2 });
    expect((await invoke(product, { x: 2, y: 2 })).body.result.cached).toBe(true);
    await request('PATCH', `/api/v1/substrates/${product}`, { token: alice.accessToken, body: { metadata: { note: 'changed' } } });
    expect((await invoke(product, { x: 2, y: 2 })).body.result.cached).toBe(false);
    // Changed, it caches again: a miss under its new epoch leaves the worker to read that epoch and store under it.
    expect((await invoke(product, { x: 2, y: 2 })).body.result.cached).toBe(true);
    await request('DELETE', `/api/v1/substrates/${product}`, { token: alice.accessToken });
    const [owner] = await app.sql<{ customer_id: string }>('select customer_id from users where email = $1', [alice.email]);
    expect(await app.deps.cache.get(owner!.customer_id, product, { x: 2, y: 2 })).toBeNull();
  });

  it('rejects oversized parameters with 422 (a limit) and a malformed name with 400 before anything is queued', async () => {
    const huge = await request('POST', `/api/v1/substrates/${ten}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { blob: 'x'.repeat(20_000) } },
    });
    expect(huge.status).toBe(422);
    expect(huge.body.errors[0].field).toBe('body.parameters');
    const badName = await request('POST', `/api/v1/substrates/${ten}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { 'not-an-identifier': 1 } },
    });
    expect(badName.status).toBe(400);
  });
});
