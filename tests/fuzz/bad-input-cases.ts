import fc from 'fast-check';
import type { OpenApiDocument } from '../../api/openapi.js';
import {
  exampleOf,
  fillPath,
  propertiesOf,
  resolveSchema,
  typesOf,
  type ApiOperation,
  type JsonSchema,
} from '../helpers/openapi-operations.js';
import type { RawRequest } from '../helpers/raw-client.js';

/** One malformed request, before the caller's credentials are added (unless it sets `authorization` itself). */
export interface BadCase {
  category: string;
  request: RawRequest;
}

export interface CaseContext {
  document: OpenApiDocument;
  /** Path values (already encoded) that reach past the id check where possible: the caller's own ids, else ids of nothing. */
  pathValues: Record<string, string>;
  /** Valid tokens to tamper with (a forged signature, `alg: none`). */
  tokens: string[];
}

export interface CaseCategory {
  name: string;
  /** Runs per (operation, credentials) at the default budget. */
  runs: number;
  arbitrary: fc.Arbitrary<BadCase>;
}

/** Strings that have crashed real parsers, drivers and databases. */
const nastyStrings = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\ud83d\ude00',
  '\ufeff',
  '\u202e',
  '\u200b',
  '\uffff',
  '\r\n',
  '\t',
  ' ',
  '',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '1e309',
  "' OR 1=1 --",
  '"; drop table jobs; --',
  '$1',
  '?',
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%00',
  '%s%n',
  '\\',
  '\\u0000',
  '0x',
  '0xFFFFFFFFFFFFFFFF',
  '__proto__',
  'constructor',
];

/** Latin-1 text: what an HTTP header value can carry byte for byte (no controls but tab). */
const latin1 = (maxLength = 40) =>
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((c) => c !== 0x7f)
      .map((c) => String.fromCharCode(c)),
    maxLength,
  });
/** Any UTF-16 code units, lone surrogates included. */
const codeUnits = (maxLength = 40) =>
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });
const nastyString = fc.oneof(fc.constantFrom(...nastyStrings), fc.string({ maxLength: 40 }), codeUnits());

/** Marks a spot in a JSON text to be replaced by raw text that JSON.stringify cannot produce. */
interface Raw {
  raw: string;
}
const raw = (text: string): Raw => ({ raw: text });
const isRaw = (value: unknown): value is Raw =>
  typeof value === 'object' && value !== null && 'raw' in value && Object.keys(value).length === 1;

/** JSON text with `Raw` values spliced in, and own `__proto__`/`constructor` keys kept as keys. */
export function toJsonText(value: unknown): string {
  const splices: string[] = [];
  const marked = JSON.stringify(value, (_key, inner: unknown) => {
    if (!isRaw(inner)) return inner;
    splices.push(inner.raw);
    return `\u2063raw${splices.length - 1}\u2063`;
  });
  return (marked ?? 'null').replace(/"\u2063raw(\d+)\u2063"/g, (_, index: string) => splices[Number(index)] as string);
}

/** `{...object, [key]: value}` as an own, enumerable property even for `__proto__`. */
function withKey(object: unknown, key: string, value: unknown): Record<string, unknown> {
  const copy: Record<string, unknown> = typeof object === 'object' && object !== null && !Array.isArray(object) ? { ...object } : {};
  Object.defineProperty(copy, key, { value, enumerable: true, configurable: true, writable: true });
  return copy;
}

const deepArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + '0' + '}'.repeat(depth);
const deepText = fc
  .tuple(fc.constantFrom(64, 200, 1_000, 10_000, 100_000), fc.boolean())
  .map(([depth, arrays]) => (arrays ? deepArray(depth) : deepObject(depth)));

const numberTexts = [
  '1e400',
  '-1e400',
  `1${'0'.repeat(400)}`,
  `0.${'0'.repeat(400)}1`,
  '-0',
  '1E2',
  '123456789012345678901234567890',
  '9007199254740993',
  '5e-324',
];

/** Values of each JSON type, for putting one where another is documented. */
const valuesOfType: Record<string, fc.Arbitrary<unknown>> = {
  string: nastyString,
  number: fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(-1, 0, 0.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308),
    fc.constantFrom(...numberTexts).map(raw),
  ),
  boolean: fc.boolean(),
  null: fc.constant(null),
  array: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  object: fc.dictionary(
    fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor')),
    fc.jsonValue({ maxDepth: 2 }),
    { maxKeys: 4 },
  ),
};

/** A value of another type than `schema` admits, or of its type but breaking its bounds. Null when anything goes. */
function wrongValue(document: OpenApiDocument, schema: JsonSchema): fc.Arbitrary<unknown> | null {
  const resolved = resolveSchema(document, schema);
  const types = typesOf(document, resolved);
  if (types.length === 0) return null;
  const others = Object.entries(valuesOfType)
    .filter(([type]) => !types.includes(type))
    .map(([, arbitrary]) => arbitrary);
  const sameType: Array<fc.Arbitrary<unknown>> = [];
  if (types.includes('string')) {
    sameType.push(fc.constant('x'.repeat((resolved.maxLength ?? 10_000) + 1)));
    if (resolved.enum || resolved.pattern || resolved.format) sameType.push(nastyString);
  }
  if (types.includes('integer')) sameType.push(fc.constantFrom(1.5, -0.25, 2 ** 53 + 2));
  if (types.includes('number')) {
    if (resolved.minimum !== undefined) sameType.push(fc.constant(resolved.minimum - 1));
    if (resolved.maximum !== undefined) sameType.push(fc.constant(resolved.maximum + 1));
    sameType.push(fc.constantFrom(...numberTexts).map(raw));
  }
  if (types.includes('array')) sameType.push(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }));
  return fc.oneof(...others, ...sameType);
}

/** The property names of the body's schema, and a value per name that breaks it. */
function propertyMutations(document: OpenApiDocument, schema: JsonSchema | undefined): Array<[string, fc.Arbitrary<unknown>]> {
  if (!schema) return [];
  return Object.entries(propertiesOf(document, schema)).flatMap(([name, property]) => {
    const wrong = wrongValue(document, property);
    return wrong ? [[name, wrong] as [string, fc.Arbitrary<unknown>]] : [];
  });
}

const hex = (length: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });

/** Ids that are not ids: wrong formats, ids of nothing, traversal, bad escapes, very long. Already encoded. */
const badId = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '..%2F..%2Fetc%2Fpasswd',
    '%2e%2e%2f%2e%2e',
    '%00',
    '%',
    '%E0%A4%A',
    '%C0%AE%C0%AE',
    '%ff',
    '%ED%A0%80',
    ';',
    '%3B',
    '%20',
    '%2F',
    'null',
    'undefined',
    '0',
    '-1',
    '0x',
    '0X0123456789ABCDEF',
    '0x0123456789ABCDEF',
    '0x0123456789abcdeg',
    `0x${'f'.repeat(17)}`,
    `0x${'f'.repeat(15)}`,
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '%7B00000000-0000-4000-8000-000000000000%7D',
    '00000000000040008000000000000000',
    'secret',
    'stats',
    'batch',
    'multiply',
    'traverse',
    'outgoing',
    '__proto__',
    'constructor',
  ),
  fc.tuple(fc.uuid(), fc.boolean()).map(([id, upper]) => (upper ? id.toUpperCase() : id)),
  hex(16).map((digits) => `0x${digits}`),
  fc
    .integer({ min: 1, max: 40 })
    .chain((length) => hex(length))
    .map((digits) => `0x${digits}`),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  codeUnits(20).map((text) => [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')),
  fc.integer({ min: 1_000, max: 12_000 }).map((length) => 'a'.repeat(length)),
);

const queryValue = fc.oneof(
  fc
    .constantFrom(
      '',
      '-1',
      '0',
      '101',
      '1e3',
      '1.5',
      'NaN',
      'Infinity',
      '0x10',
      ' 5',
      '+5',
      '٣',
      'null',
      'true',
      '[]',
      '{}',
      'x'.repeat(5_000),
    )
    .map(encodeURIComponent),
  fc.constantFrom('%00', '%', '%zz', '%E0%A4%A', '%C0%80', '%ED%A0%80', '%FF%FE'),
  nastyString.map((text) => [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')),
);

/** `?cursor=` values that decode, as this API's cursors do, to JSON: of the wrong shape, or the right shape with values SQL refuses. */
const forgedCursor = fc
  .oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(
      'not-a-uuid',
      '00000000-0000-0000-0000-000000000000',
      1e300,
      -2,
      -1,
      2 ** 31,
      2 ** 63,
      '9'.repeat(19),
      '9'.repeat(30),
      '0',
      { createdAt: 'yesterday', id: 'x' },
      { createdAt: '2026-13-45T99:99:99Z', id: '00000000-0000-0000-0000-000000000000' },
      { createdAt: '\u0000', id: '\u0000' },
      { createdAt: '2026-01-01T00:00:00.000Z', id: 'not-a-uuid' },
      { createdAt: 1, id: 2 },
    ),
    fc.record({ createdAt: nastyString, id: nastyString }),
  )
  .map((value) => Buffer.from(JSON.stringify(value) ?? 'null').toString('base64url'));

const queryKey = (documented: string[]) =>
  fc.oneof(
    ...(documented.length > 0 ? [fc.constantFrom(...documented)] : []),
    fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'hasOwnProperty',
      'toString',
      '__proto__[x]',
      'constructor[prototype][x]',
      'limit[]',
      'limit[a]',
      'metadata.__proto__',
      'metadata.',
      'metadata.constructor',
      'metadata.a',
      'metadata.a.b',
      'cursor',
    ),
    fc.string({ maxLength: 12 }).map(encodeURIComponent),
  );

/** Authorization values that must all answer 401: wrong schemes, garbage, forged and unsigned tokens. */
function badAuthorization(tokens: string[]): fc.Arbitrary<string> {
  const forged = tokens.flatMap((token) => {
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return [];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const asAdmin = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const hs512 = Buffer.from(JSON.stringify({ alg: 'HS512', typ: 'JWT' })).toString('base64url');
    return [
      `Bearer ${header}.${asAdmin}.${signature}`,
      `Bearer ${none}.${payload}.`,
      `Bearer ${hs512}.${payload}.${signature}`,
      `Bearer ${token.slice(0, -2)}`,
      `Bearer ${token}x`,
    ];
  });
  return fc.oneof(
    fc.constantFrom(
      '',
      'Bearer',
      'Bearer ',
      'bearer',
      'Basic dXNlcjpwYXNz',
      'Token abc',
      'Bearer a.b.c',
      'Bearer ...',
      'Bearer a b',
      'Bearer \t\t',
      `Bearer sk_live_${'A'.repeat(43)}`,
      'Bearer sk_live_',
      `Bearer sk_live_${'\u00ff'.repeat(10)}`,
      `Bearer ${'x'.repeat(8_000)}`,
      'Bearer \u00e9\u00e8',
      ...forged,
    ),
    latin1(60),
    latin1(60).map((text) => `Bearer ${text}`),
  );
}

const headerValue = fc.oneof(
  latin1(),
  fc.constantFrom('', ' ', '\t', 'x'.repeat(256), 'x'.repeat(255), '\u00ff\u00fe', '__proto__', 'wait=30'),
);
const preferValue = fc.oneof(
  fc.constantFrom(
    'wait=0',
    'wait=-1',
    'wait=abc',
    'wait=0.001',
    'wait',
    'wait=',
    'respond-async',
    'return=minimal',
    ';;;',
    'wait=1, wait=0',
    'handling=strict',
  ),
  latin1(),
);

/**
 * Garbage for every part of a request to `operation`: bodies, content types, query strings, headers and
 * path ids. Every category builds on a request that is otherwise well formed, so the garbage is what the
 * route has to handle.
 */
export function caseCategories(operation: ApiOperation, context: CaseContext): CaseCategory[] {
  const { document } = context;
  const path = fillPath(operation.path, context.pathValues);
  const bodySchema = operation.body?.contentType === 'application/json' ? operation.body.schema : undefined;
  const example = bodySchema ? exampleOf(document, bodySchema) : {};
  const exampleText = JSON.stringify(example);
  const json = (body: string | Buffer, category: string, contentType = 'application/json'): BadCase => ({
    category,
    request: { method: operation.method, path, headers: { 'content-type': contentType }, body },
  });
  const mutations = propertyMutations(document, bodySchema);
  const propertyName = mutations.length > 0 ? fc.constantFrom(...mutations.map(([name]) => name)) : fc.constant('value');
  const maxBody = ['/batches', '/jobs/bulk', '/substrates/batch', '/admin/usage/ingest'].includes(operation.path) ? 16 : 1;

  const categories: CaseCategory[] = [
    { name: 'random JSON body', runs: 5, arbitrary: fc.jsonValue().map((value) => json(toJsonText(value), 'random JSON body')) },
    {
      name: 'unknown fields',
      runs: 3,
      arbitrary: fc
        .tuple(
          fc.oneof(
            fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'admin', 'customer_id', ''),
            fc.string({ maxLength: 20 }),
          ),
          fc.jsonValue({ maxDepth: 2 }),
        )
        .map(([key, value]) => json(toJsonText(withKey(example, key, value)), 'unknown fields')),
    },
    {
      name: 'huge strings',
      runs: 2,
      arbitrary: fc
        .tuple(propertyName, fc.constantFrom(100_000, 900_000, maxBody * 1024 * 1024 + 10))
        .map(([name, length]) => json(toJsonText(withKey(example, name, 'x'.repeat(length))), 'huge strings')),
    },
    {
      name: 'deep nesting',
      runs: 3,
      arbitrary: fc
        .tuple(propertyName, deepText, fc.boolean())
        .map(([name, text, whole]) => json(whole ? text : toJsonText(withKey(example, name, raw(text))), 'deep nesting')),
    },
    {
      name: 'nasty strings',
      runs: 4,
      arbitrary: fc
        .tuple(propertyName, nastyString, fc.boolean())
        .map(([name, text, asKey]) => json(toJsonText(withKey(example, name, asKey ? { [text]: 1 } : text)), 'nasty strings')),
    },
    {
      name: 'invalid UTF-8',
      runs: 2,
      arbitrary: fc.oneof(
        fc
          .tuple(
            propertyName,
            fc.constantFrom([0xff], [0xfe, 0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf], [0x00]),
          )
          .map(([name, bytes]) => {
            const [before, after] = toJsonText(withKey(example, name, '\u2063')).split('\u2063');
            return json(Buffer.concat([Buffer.from(before ?? ''), Buffer.from(bytes), Buffer.from(after ?? '')]), 'invalid UTF-8');
          }),
        fc.uint8Array({ maxLength: 64 }).map((bytes) => json(Buffer.from(bytes), 'invalid UTF-8')),
      ),
    },
    {
      name: 'malformed JSON',
      runs: 4,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            '{',
            '}',
            '{"a":}',
            "{'a':1}",
            '[1,]',
            '{"a":1,}',
            'NaN',
            'Infinity',
            'undefined',
            'nul',
            'tru',
            '01',
            '"unterminated',
            '{"a":"\\x41"}',
            '{"a":"\\u12"}',
            '\ufeff{}',
            '{}garbage',
            '{} {}',
            ' ',
            '\u0000',
            '/* c */{}',
            '{"a":1e999}',
            '1e999',
            '-',
            '--1',
            '[[[[[[',
            `${exampleText.slice(0, -1)}`,
          ),
          fc.string({ maxLength: 40 }),
        )
        .map((text) => json(text, 'malformed JSON')),
    },
    {
      name: 'wrong content type',
      runs: 4,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/xml',
            'application/json; charset=utf-16',
            'application/json; charset=klingon',
            'application/json; charset=',
            'application/json;;;',
            'application/x-ndjson',
            '*/*',
            'application/*',
            '',
            'application/merge-patch+json',
            'text/json',
            'application/json, text/plain',
          ),
          fc.constantFrom(undefined, 'gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, gzip'),
          fc.constantFrom(exampleText, 'a=1&b=2', '<a/>', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--'),
        )
        .map(([contentType, encoding, body]) => {
          const bad = json(encoding ? Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00]) : body, 'wrong content type', contentType);
          if (encoding) (bad.request.headers as Record<string, string>)['content-encoding'] = encoding;
          return bad;
        }),
    },
  ];

  if (mutations.length > 0) {
    categories.push({
      name: 'wrong types',
      runs: 6,
      arbitrary: fc
        .oneof(...mutations.map(([name, wrong]) => wrong.map((value) => [name, value] as const)))
        .map(([name, value]) => json(toJsonText(withKey(example, name, value)), 'wrong types')),
    });
  }

  if (operation.body && !bodySchema) {
    // A body that is not JSON (NDJSON rows): lines of garbage, in the operation's own content type.
    const line = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }).map(toJsonText),
      nastyString,
      deepText,
      fc.constant('x'.repeat(100_000)),
      fc.string({ maxLength: 40 }),
    );
    categories.push({
      name: `${operation.body.contentType} lines`,
      runs: 6,
      arbitrary: fc
        .array(line, { minLength: 0, maxLength: 8 })
        .map((lines) => json(lines.join('\n'), `${operation.body?.contentType} lines`, operation.body?.contentType)),
    });
  }

  const documentedQuery = operation.query.map((parameter) => parameter.name);
  categories.push({
    name: 'query strings',
    runs: documentedQuery.length > 0 ? 8 : 3,
    arbitrary: fc
      .array(
        fc.oneof(
          fc.tuple(queryKey(documentedQuery), queryValue).map(([key, value]) => `${key}=${value}`),
          forgedCursor.map((cursor) => `cursor=${cursor}`),
          queryKey(documentedQuery),
        ),
        { minLength: 1, maxLength: 6 },
      )
      .map((pairs) => ({ category: 'query strings', request: { method: operation.method, path: `${path}?${pairs.join('&')}` } })),
  });

  // Headers are read after the body is validated, so where the operation documents header parameters they go
  // with a well-formed body (optional fields too: an invoke payload needs its substrate_id to get that far).
  // Elsewhere no body: a well-formed one could change the caller's account (PATCH /billing/limits).
  const fullExample =
    bodySchema && operation.headers.length > 0 ? JSON.stringify(exampleOf(document, bodySchema, { optional: true })) : undefined;
  categories.push({
    name: 'headers',
    runs: operation.headers.length > 0 ? 8 : 3,
    arbitrary: fc
      .record(
        {
          authorization: badAuthorization(context.tokens),
          prefer: preferValue,
          'idempotency-key': fc.oneof(headerValue, fc.constant('a, b')),
          'x-request-id': headerValue,
          'last-event-id': headerValue,
          accept: fc.constantFrom('text/event-stream', 'application/xml', '*/*', 'text/html', 'application/problem+json', '\u00ff'),
          cookie: fc.constantFrom('chrysalis_admin=%E0%A4%A', 'chrysalis_admin=', '=;;=', `chrysalis_admin=${'a'.repeat(43)}`, 'a=%'),
          'x-forwarded-for': headerValue,
          'x-http-method-override': fc.constantFrom('DELETE', 'PATCH', '\u00ff'),
        },
        { requiredKeys: [] },
      )
      .map((fuzzed): BadCase => {
        const headers: Record<string, string | string[]> = fullExample ? { 'content-type': 'application/json' } : {};
        for (const [name, value] of Object.entries(fuzzed)) if (value !== undefined) headers[name] = value;
        // The same header twice: Node joins most with ", " and keeps the first Authorization.
        if (fuzzed['idempotency-key'] === 'a, b') headers['idempotency-key'] = ['a', 'b'];
        return { category: 'headers', request: { method: operation.method, path, headers, ...(fullExample ? { body: fullExample } : {}) } };
      }),
  });

  if (operation.pathParams.length > 0) {
    categories.push({
      name: 'path ids',
      runs: 10,
      arbitrary: fc.tuple(fc.constantFrom(...operation.pathParams), badId).map(([name, id]) => ({
        category: 'path ids',
        request: {
          method: operation.method,
          path: fillPath(operation.path, { ...context.pathValues, [name]: id }),
          ...(bodySchema ? { headers: { 'content-type': 'application/json' }, body: exampleText } : {}),
        },
      })),
    });
  }
  return categories;
}

/** Every path into a JSON value (not the root itself): `['payload'], ['payload', 'parameters'], …`. */
function pathsOf(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => [[...prefix, key], ...pathsOf(inner, [...prefix, key])]);
}

function replaceAt(value: unknown, path: string[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path as [string, ...string[]];
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) };
  (copy as Record<string, unknown>)[head] = replaceAt((value as Record<string, unknown>)[head], rest, replacement);
  return copy;
}

/** What PostgreSQL and JSON.stringify choke on, put at each spot of a well-formed body. */
const unstorableValues: unknown[] = [
  'a\u0000b',
  'a\ud800b',
  '\udc00',
  { '\u0000': 1 },
  { x: 'a\u0000b' },
  [['\u0000']],
  raw(deepObject(65)),
  raw(deepArray(100_000)),
];
const badPathIds = [
  '%00',
  'a%00b',
  '%ED%A0%80',
  '..',
  '%E0%A4%A',
  '%2F',
  'a'.repeat(12_000),
  'a'.repeat(20_000),
  '00000000-0000-4000-8000-000000000000',
  '0x0123456789abcdef',
];
const badQueryValues = ['%00', 'a%00b', '%ED%A0%80', 'x'.repeat(10_000), '%E0%A4%A'];
const forgedCursors = [
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
  1e300,
  -2,
  2 ** 31,
  2 ** 53,
  '9'.repeat(19),
  '9'.repeat(30),
  'a\u0000b',
  { createdAt: 'yesterday', id: 'x' },
  { createdAt: 'garbage', id: '00000000-0000-0000-0000-000000000000' },
  { createdAt: '\u0000', id: '\u0000' },
  { createdAt: '2026-01-01T00:00:00.000Z', id: 'not-a-uuid' },
  { createdAt: '2026-01-01T00:00:00.000Z', id: 'a\u0000b' },
  { createdAt: 1, id: 2 },
  null,
  [],
].map((value) => Buffer.from(JSON.stringify(value)).toString('base64url'));

/**
 * The same bad inputs for every operation, exhaustively (the random categories may miss a spot): each
 * unstorable value at each spot of a well-formed body, each bad id in each path parameter, each bad value
 * in each query parameter (and forged cursors), odd bytes in each documented header.
 */
export function edgeCases(operation: ApiOperation, context: CaseContext): BadCase[] {
  const { document } = context;
  const path = fillPath(operation.path, context.pathValues);
  const bodySchema = operation.body?.contentType === 'application/json' ? operation.body.schema : undefined;
  const cases: BadCase[] = [];
  const request = (category: string, overrides: Partial<RawRequest>): BadCase => ({
    category,
    request: { method: operation.method, path, ...overrides },
  });
  const jsonBody = (body: string) => ({ headers: { 'content-type': 'application/json' }, body });

  const base = bodySchema ? exampleOf(document, bodySchema, { optional: true }) : {};
  for (const spot of [[], ...pathsOf(base)]) {
    for (const value of unstorableValues)
      cases.push(request(`unstorable at body.${spot.join('.')}`, jsonBody(toJsonText(replaceAt(base, spot, value)))));
  }
  const exampleText = bodySchema ? JSON.stringify(exampleOf(document, bodySchema)) : undefined;
  for (const name of operation.pathParams) {
    for (const id of badPathIds) {
      cases.push(
        request(`bad {${name}}`, {
          path: fillPath(operation.path, { ...context.pathValues, [name]: id }),
          ...(exampleText ? jsonBody(exampleText) : {}),
        }),
      );
    }
  }
  for (const parameter of operation.query) {
    for (const value of badQueryValues) cases.push(request(`bad ?${parameter.name}`, { path: `${path}?${parameter.name}=${value}` }));
    cases.push(request(`repeated ?${parameter.name}`, { path: `${path}?${parameter.name}=1&${parameter.name}=2` }));
    if (parameter.name === 'cursor')
      for (const cursor of forgedCursors) cases.push(request('forged cursor', { path: `${path}?cursor=${cursor}` }));
  }
  if (operation.method === 'GET') cases.push(request('bad ?metadata.', { path: `${path}?metadata.a=%00&__proto__=1&constructor=1` }));
  for (const header of operation.headers) {
    for (const value of ['\u00ff\u00fe', 'x'.repeat(256), '', ' ', 'a, b']) {
      cases.push(
        request(`bad ${header.name}`, {
          headers: { [header.name]: value, ...(exampleText ? { 'content-type': 'application/json' } : {}) },
          ...(exampleText ? { body: exampleText } : {}),
        }),
      );
    }
  }
  return cases;
}
