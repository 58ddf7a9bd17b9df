import { describe, expect, it } from 'vitest';
import { maxBodyDepth, unstorableInput } from '../../api/input-guard.js';

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
    expect(unstorableInput({ list: ['ok', 'x\ud800'] }, 'body')).toEqual([
      { field: 'body.list.1', message: 'contains an unpaired UTF-16 surrogate' },
    ]);
    expect(unstorableInput({ name: '\udc00' }, 'query')).toEqual([
      { field: 'query.name', message: 'contains an unpaired UTF-16 surrogate' },
    ]);
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
});
