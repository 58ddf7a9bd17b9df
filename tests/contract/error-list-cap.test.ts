import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

/** A validation answer lists at most 100 field errors and counts the rest: a 1,500-error batch answered 290 KB. */
const suite = useTestApp({ users: 1 });
let token: string;
const post = (path: string, body: unknown) => suite.request('POST', `/api/v1${path}`, { token, body });

beforeAll(() => {
  token = (suite.users[0] as TestUser).accessToken;
});

describe('a long list of field errors is capped', () => {
  it('lists the first 100 errors of a 1,500-error batch and counts the rest', async () => {
    const invocations = Array.from({ length: 1500 }, () => ({ substrate_id: 'not-a-substrate' }));
    const response = await post('/batches', { invocations });
    expectProblem(response, 400, 'validation', ['body.invocations.0.substrate_id', 'body.invocations.99.substrate_id']);
    expect(response.body.errors).toHaveLength(100);
    expect(response.body.errors_total).toBe(1500);
    expect(response.body.detail).toMatch(/and 1,?400 more/);
    expect(response.text.length).toBeLessThan(40_000);
  });

  it('leaves a short list whole, without errors_total', async () => {
    const response = await post('/batches', { invocations: [{ substrate_id: 'x' }, { substrate_id: 'y' }] });
    expectProblem(response, 400, 'validation', ['body.invocations.0.substrate_id', 'body.invocations.1.substrate_id']);
    expect(response.body.errors).toHaveLength(2);
    expect(response.body).not.toHaveProperty('errors_total');
  });

  it('answers a body of 90,000 unknown keys with the first 100 named and errors_total counting them all', async () => {
    const body: Record<string, unknown> = { expression_type: 'constant', value: 1 };
    for (let i = 0; i < 90_000; i++) body[`k${i}`] = 0;
    const response = await post('/substrates', body);
    expectProblem(response, 400, 'validation', ['body.k0', 'body.k99']);
    expect(response.body.errors).toHaveLength(100);
    expect(response.body.errors[0]).toEqual({ field: 'body.k0', message: 'unknown field' });
    expect(response.body.errors_total).toBe(90_000);
    expect(response.text.length).toBeLessThan(20_000);
  });

  it('cuts an unknown key of 500 KB to 128 characters where it names it', async () => {
    const response = await post('/substrates', { expression_type: 'constant', value: 1, ['x'.repeat(500_000)]: 1 });
    expectProblem(response, 400, 'validation');
    expect(response.body.errors).toEqual([{ field: `body.${'x'.repeat(128)}…`, message: 'unknown field' }]);
    expect(response.text.length).toBeLessThan(2_000);
  });

  it('cuts a long key to 128 characters where an unstorable key or value under it is named', async () => {
    const long = 'x'.repeat(500_000);
    const badKey = await post('/substrates', { expression_type: 'constant', value: 1, [`${long}\u0000`]: 1 });
    expectProblem(badKey, 400, 'validation');
    expect(badKey.body.errors).toEqual([{ field: `body.${'x'.repeat(128)}…`, message: 'key contains U+0000 (NUL)' }]);
    expect(badKey.text.length).toBeLessThan(2_000);
    const badValue = await post('/substrates', { expression_type: 'constant', value: 1, metadata: { [long]: 'a\u0000b' } });
    expectProblem(badValue, 400, 'validation');
    expect(badValue.body.errors).toEqual([{ field: `body.metadata.${'x'.repeat(128)}…`, message: 'contains U+0000 (NUL)' }]);
    expect(badValue.text.length).toBeLessThan(2_000);
  });

  it('names a single unknown field, as before', async () => {
    const response = await post('/substrates', { expression_type: 'constant', value: 1, colour: 'red' });
    expectProblem(response, 400, 'validation', ['body.colour']);
    expect(response.body).not.toHaveProperty('errors_total');
  });
});
