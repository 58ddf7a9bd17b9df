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
});
