import { describe, expect, it } from 'vitest';
import { JsonText, jsonTextOf, resultsAsJsonText, stringifyWithJsonText } from '../../lib/json-text.js';

describe('stringifyWithJsonText', () => {
  it('writes a value without JsonText as JSON.stringify does', () => {
    const value = { a: 1, b: ['x', null, { c: 'é\u2028"\\' }], d: undefined };
    expect(stringifyWithJsonText(value)).toBe(JSON.stringify(value));
  });

  it('writes each JsonText as its text, in objects and arrays, beside ordinary values', () => {
    const written = stringifyWithJsonText({
      items: [
        { id: 1, result: new JsonText('{"rows": [1, 2, {"k": "v"}]}') },
        { id: 2, result: new JsonText('"a \\"quoted\\" text"') },
      ],
      next: null,
    });
    expect(JSON.parse(written)).toEqual({
      items: [
        { id: 1, result: { rows: [1, 2, { k: 'v' }] } },
        { id: 2, result: 'a "quoted" text' },
      ],
      next: null,
    });
  });

  it('leaves strings that look like its marks alone: only the marks of this call are replaced', () => {
    const lookalike = '\u0000json-text:00000000-0000-0000-0000-000000000000:0';
    const written = stringifyWithJsonText({ error: lookalike, result: new JsonText('[7]') });
    expect(JSON.parse(written)).toEqual({ error: lookalike, result: [7] });
  });
});

describe('jsonTextOf and resultsAsJsonText', () => {
  it('read SQL NULL and JSON null as null (as a parsed read gives) and anything else as JsonText', () => {
    expect(jsonTextOf(null)).toBeNull();
    expect(jsonTextOf('null')).toBeNull();
    expect(jsonTextOf('0')).toEqual(new JsonText('0'));
    const rows = resultsAsJsonText([{ result: '{"a": 1}' as unknown }, { result: null as unknown }]);
    expect(stringifyWithJsonText(rows)).toBe('[{"result":{"a": 1}},{"result":null}]');
  });
});
