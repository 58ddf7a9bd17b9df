import { beforeAll, describe, expect, it } from 'vitest';
import { createCelEnvironment } from '../../jobs/invoke/cel-environment.js';
import { outOfRangeIntLiteral } from '../../jobs/invoke/int-literal-range.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

const env = createCelEnvironment();
/** Where the first out-of-range literal starts (a 0-based offset), or null. */
const offsetOf = (expression: string) => outOfRangeIntLiteral(env.parse(expression).ast)?.pos ?? null;

describe('outOfRangeIntLiteral', () => {
  it.each([
    ['9223372036854775807'],
    ['-9223372036854775807'],
    ['-9223372036854775808'],
    ['- 9223372036854775808'],
    ['-0x8000000000000000'],
    ['x - -9223372036854775808'],
    ['-(9223372036854775808)'],
    ['0x7fffffffffffffff'],
    ['18446744073709551615u'],
    ['99999999999999999999.0 > 1e300'],
  ])('finds nothing in %s', (expression) => {
    expect(offsetOf(expression)).toBeNull();
  });

  it.each([
    ['9223372036854775808', 0],
    ['0x8000000000000000', 0],
    ['-9223372036854775809', 1],
    ['x + 99999999999999999999', 4],
    ['--9223372036854775808', 2],
    ['-(-9223372036854775808)', 3],
    ['[1, 2].map(v, v * 9223372036854775808)', 18],
    ['{"k": 9223372036854775808}', 6],
    ['f(1, 9223372036854775808)', 5],
    ['x.y(9223372036854775808)', 4],
    ['true ? 1 : 9223372036854775808', 11],
    ['1 + 99999999999999999999 + 9223372036854775808', 4],
  ])('finds the literal in %s at offset %i', (expression, offset) => {
    expect(offsetOf(expression)).toBe(offset);
  });
});

const suite = useTestApp({ workers: true, users: 1 });
let request: ReturnType<typeof httpClient>;
let alice: TestUser;

beforeAll(() => {
  request = suite.request;
  alice = suite.users[0] as TestUser;
});

const create = (expression: string) =>
  request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression } });

describe('POST /substrates with int literals', () => {
  it.each([
    ['2⁶³', '9223372036854775808', 1],
    ['an addend over int64', 'x + 99999999999999999999', 5],
    ['a 1,000-digit literal', '1'.repeat(1000), 1],
    ['−2⁶³ − 1', '-9223372036854775809', 2],
  ])('refuses %s with 422 naming body.expression and the position', async (_, expression, column) => {
    const response = await create(expression);
    expectProblem(response, 422, 'unprocessable', ['body.expression']);
    expect(response.body.errors[0].position).toEqual({ offset: column - 1, line: 1, column });
    expect(response.body.errors[0].message).toMatch(new RegExp(`int64 range.* at line 1, column ${column}$`));
  });

  it('refuses a uint literal over uint64 in the same shape', async () => {
    const response = await create('18446744073709551616u');
    expectProblem(response, 422, 'unprocessable', ['body.expression']);
    expect(response.body.errors[0].position).toEqual({ offset: 0, line: 1, column: 1 });
  });

  it('accepts and evaluates int64’s least and greatest values', async () => {
    for (const [expression, result] of [
      ['-9223372036854775808', '-9223372036854775808'],
      ['9223372036854775807', '9223372036854775807'],
      ['-0x8000000000000000 + 1', '-9223372036854775807'],
    ]) {
      const created = await create(expression as string);
      expect(created.status, created.text).toBe(201);
      const invoked = await request('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
        token: alice.accessToken,
        headers: { prefer: 'wait=10' },
        body: { parameters: {} },
      });
      expect(invoked.body.result, invoked.text).toMatchObject({ result, cached: false });
    }
  });

  it('refuses a whole batch with 422 naming each item’s expression, creating none of it', async () => {
    const good = { expression_type: 'expression', expression: 'x + 7' };
    const response = await request('POST', '/api/v1/substrates/batch', {
      token: alice.accessToken,
      body: {
        substrates: [
          good,
          { expression_type: 'expression', expression: 'x * 9223372036854775808' },
          { expression_type: 'expression', expression: '-9223372036854775808' },
          { expression_type: 'expression', expression: '[0x8000000000000000]' },
        ],
      },
    });
    expectProblem(response, 422, 'unprocessable', ['body.substrates.1.expression', 'body.substrates.3.expression']);
    expect(response.body.errors.map((error: { field: string; position: unknown }) => [error.field, error.position])).toEqual([
      ['body.substrates.1.expression', { offset: 4, line: 1, column: 5 }],
      ['body.substrates.3.expression', { offset: 1, line: 1, column: 2 }],
    ]);
    const listed = await request('GET', '/api/v1/substrates', { token: alice.accessToken });
    const created = await create(good.expression);
    expect(created.status).toBe(201);
    expect(listed.body.items.map((item: { substrate_id: string }) => item.substrate_id)).not.toContain(created.body.substrate_id);
  });
});
