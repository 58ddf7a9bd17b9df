import { describe, expect, it } from 'vitest';
import { inputGuard, maxBodyDepth, unstorableInput } from '../../api/input-guard.js';

const nested = (depth: number): unknown => {
  let value: unknown = 0;
  for (let level = 0; level < depth; level++) value = { a: value };
  return value;
};

describe('input guard', () => {
  it('lets ordinary input through: text in any script, emoji (paired surrogates), nesting up to the limit', () => {
    expect(unstorableInput({ name: 'Zoë 名前 😀', tags: ['a', 'b'], metadata: { n: 1, ok: true, none: null } }, 'body')).toEqual([]);
    expect(unstorableInput(nested(maxBodyDepth), 'body')).toEqual([]);
    expect(unstorableInput({ limit: '10', cursor: 'abc' }, 'query')).toEqual([]);
    expect(unstorableInput(undefined, 'body')).toEqual([]);
  });

  it('names each NUL and unpaired surrogate, in values and in keys', () => {
    expect(unstorableInput({ payload: { parameters: { x: 'a\u0000b' } } }, 'body')).toEqual([
      { field: 'body.payload.parameters.x', message: 'contains U+0000 (NUL)' },
    ]);
    expect(unstorableInput({ metadata: { 'k\u0000': 1 } }, 'body')).toEqual([
      { field: 'body.metadata.k\u0000', message: 'key contains U+0000 (NUL)' },
    ]);
    // An own `__proto__` key, as JSON.parse makes one: every copy after it would take it as a prototype and drop it.
    expect(unstorableInput(JSON.parse('{"metadata": {"__proto__": {"a": 1}, "b": 2}}'), 'body')).toEqual([
      { field: 'body.metadata.__proto__', message: expect.stringMatching(/^key __proto__ cannot be kept/) },
    ]);
    expect(unstorableInput(JSON.parse('{"metadata": {"proto": {"__proto": 1}, "constructor": 2}}'), 'body')).toEqual([]);
    expect(unstorableInput({ list: ['ok', 'x\ud800'] }, 'body')).toEqual([
      { field: 'body.list.1', message: 'contains an unpaired UTF-16 surrogate' },
    ]);
    expect(unstorableInput({ name: '\udc00' }, 'query')).toEqual([
      { field: 'query.name', message: 'contains an unpaired UTF-16 surrogate' },
    ]);
  });

  it('names each number past the double range (1e999 parses as Infinity, and would be stored as null)', () => {
    const parsed = JSON.parse('{"parameters":{"x":1e999,"y":-1e999,"z":1e308,"w":-0,"v":5e-324},"list":[1,2e400]}') as unknown;
    expect(unstorableInput(parsed, 'body')).toEqual([
      { field: 'body.list.1', message: 'is a number outside the range of a double (JSON numbers must be finite)' },
      { field: 'body.parameters.y', message: 'is a number outside the range of a double (JSON numbers must be finite)' },
      { field: 'body.parameters.x', message: 'is a number outside the range of a double (JSON numbers must be finite)' },
    ]);
    expect(unstorableInput({ parameters: { x: Number.MAX_VALUE, y: -Number.MAX_VALUE, z: 1e-320 } }, 'body')).toEqual([]);
  });

  it("names a bulk submit's fields as SPEC §9 does when asked: jobs[3].payload.x", () => {
    const body = { jobs: [{ payload: {} }, { payload: { parameters: { x: 'a\u0000', list: [1, Infinity] } } }] };
    expect(unstorableInput(body, '', 10, 'bracketed')).toEqual([
      { field: 'jobs[1].payload.parameters.list[1]', message: 'is a number outside the range of a double (JSON numbers must be finite)' },
      { field: 'jobs[1].payload.parameters.x', message: 'contains U+0000 (NUL)' },
    ]);
    expect(unstorableInput(body, 'body')[1]).toEqual({ field: 'body.jobs.1.payload.parameters.x', message: 'contains U+0000 (NUL)' });
  });

  it('refuses nesting past the limit without overflowing its own stack', () => {
    expect(unstorableInput(nested(maxBodyDepth + 1), 'body')).toEqual([
      { field: `body${'.a'.repeat(maxBodyDepth)}`, message: `nests deeper than ${maxBodyDepth} levels` },
    ]);
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(unstorableInput(deep, 'body')).toHaveLength(1);
  });

  it('stops after the first ten problems', () => {
    expect(
      unstorableInput(
        Array.from({ length: 50 }, () => '\u0000'),
        'body',
      ),
    ).toHaveLength(10);
  });

  it('the middleware passes exactly the input unstorableInput finds nothing in, and refuses the rest with its fields', () => {
    const guard = inputGuard({ bodyCheckedByRoute: new Set(['/bulk']) });
    const verdict = (body: unknown, query: unknown = {}, path = '/jobs') => {
      const outcome: { passed: boolean; errors?: unknown } = { passed: false };
      try {
        guard({ path, body, query } as never, {} as never, (() => (outcome.passed = true)) as never);
      } catch (error) {
        outcome.errors = (error as { extra?: { errors?: unknown } }).extra?.errors ?? error;
      }
      return outcome;
    };
    const sparse: unknown[] = ['ok'];
    sparse[3] = 'x\u0000';
    const cases: Array<[body: unknown, query?: unknown]> = [
      [{ parameters: { x: 5, y: 7 } }],
      [{ name: 'Zoë 名前 😀', tags: ['a', 'b'], metadata: { n: 1, ok: true, none: null } }],
      [nested(maxBodyDepth)],
      [nested(maxBodyDepth + 1)],
      [undefined],
      [[[['deep', ['x\ud800']]]]],
      [{ metadata: { 'k\u0000': 1 } }],
      [{ 'k\udc00': { inner: 'fine' } }],
      [sparse],
      [JSON.parse('['.repeat(200_000) + ']'.repeat(200_000))],
      [{ ok: 1 }, { name: '\udc00' }],
      [{ ok: 1 }, { limit: '10' }],
      [{ parameters: { x: Infinity } }],
      [[1, 2, -Infinity]],
      [{ parameters: { x: Number.MAX_VALUE } }],
    ];
    for (const [body, query] of cases) {
      const expected = [...unstorableInput(body, 'body'), ...unstorableInput(query ?? {}, 'query')];
      const outcome = verdict(body, query);
      if (expected.length === 0) expect(outcome).toEqual({ passed: true });
      else expect(outcome).toEqual({ passed: false, errors: expected });
    }
    // A route that checks its own body: only the query is looked at here.
    expect(verdict({ x: 'a\u0000' }, {}, '/bulk')).toEqual({ passed: true });
    expect(verdict({ x: 'a\u0000' }, { q: 'b\u0000' }, '/bulk')).toEqual({
      passed: false,
      errors: [{ field: 'query.q', message: 'contains U+0000 (NUL)' }],
    });
  });
});
