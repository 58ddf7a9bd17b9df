import fc from 'fast-check';
import type { BadCase } from './bad-input-cases.js';

/**
 * The operator pages outside /api/v1 are not in the OpenAPI document (they are HTML forms and Bull Board),
 * so their routes are listed here: garbage forms, cookies and CSRF headers. Pages may answer HTML errors
 * (the login form shows its message); anything else answers a problem.
 */
const pages: Array<[method: string, path: string]> = [
  ['GET', '/admin'],
  ['GET', '/admin/login'],
  ['POST', '/admin/login'],
  ['GET', '/admin/logout'],
  ['POST', '/admin/logout'],
  ['GET', '/admin/queues'],
  ['GET', '/admin/queues/api/queues'],
  ['PUT', '/admin/queues/api/queues/invoke/retry/failed'],
];

const garbage = fc.oneof(
  fc.constantFrom('%', '%E0%A4%A', '%00', '\u00ff', '__proto__', 'x'.repeat(10_000), ''),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
);

export function adminPageCases(): fc.Arbitrary<BadCase> {
  return fc
    .record(
      {
        page: fc.constantFrom(...pages),
        query: fc.option(
          garbage.map((text) => `?${encodeURIComponent(text)}=${text.replace(/[^\x21-\x7e]/g, '')}`),
          { nil: '' },
        ),
        contentType: fc.constantFrom(
          'application/x-www-form-urlencoded',
          'application/json',
          'text/plain',
          'multipart/form-data',
          'application/x-www-form-urlencoded; charset=klingon',
        ),
        body: fc.oneof(
          fc
            .tuple(garbage, garbage)
            .map(([email, password]) => `email=${email.replace(/[^\x21-\x7e]/g, '')}&password=${password.replace(/[^\x21-\x7e]/g, '')}`),
          fc.constantFrom(
            'email[]=a&password[x]=b',
            '__proto__[admin]=1',
            'email=%&password=%',
            '{"email":"a"}',
            'x'.repeat(20_000),
            '=&=&&',
          ),
        ),
        cookie: fc.constantFrom(
          'chrysalis_admin=%E0%A4%A',
          'chrysalis_admin=%',
          `chrysalis_admin=${'a'.repeat(43)}`,
          'chrysalis_admin=',
          'a=b; ; =;',
          '\u00ff=\u00ff',
        ),
        fetchSite: fc.constantFrom('same-origin', 'cross-site', 'none', '\u00ff'),
        origin: fc.constantFrom('null', 'http://evil.test', '::', 'http://127.0.0.1', '\u00ff'),
      },
      { requiredKeys: ['page', 'query', 'contentType', 'body'] },
    )
    .map(({ page: [method, path], query, contentType, body, cookie, fetchSite, origin }) => ({
      category: 'admin pages',
      request: {
        method,
        path: `${path}${query}`,
        headers: {
          'content-type': contentType,
          ...(cookie !== undefined ? { cookie } : {}),
          ...(fetchSite !== undefined ? { 'sec-fetch-site': fetchSite } : {}),
          ...(origin !== undefined ? { origin } : {}),
        },
        ...(method === 'GET' ? {} : { body }),
      },
    }));
}

/**
 * The admin pages' bad inputs, each once, before the random ones: the login form allows 10 attempts a
 * minute per address, so the forms that matter most go first (same-origin, so the CSRF check lets them in).
 */
export function adminPageEdgeCases(): BadCase[] {
  const form = (body: string, contentType = 'application/x-www-form-urlencoded'): BadCase => ({
    category: 'admin login form',
    request: { method: 'POST', path: '/admin/login', headers: { 'content-type': contentType, 'sec-fetch-site': 'same-origin' }, body },
  });
  const withCookie = (method: string, path: string, cookie: string): BadCase => ({
    category: 'admin cookie',
    request: { method, path, headers: { cookie, 'sec-fetch-site': 'same-origin' } },
  });
  return [
    form('email=%00&password=x'),
    form('email=admin%40example.test%00&password=%00'),
    form('email[]=a&password[x]=b'),
    form('__proto__[email]=a&constructor=b'),
    form(`email=${'x'.repeat(300)}&password=x`),
    form(`email=a&password=${'x'.repeat(20_000)}`),
    form('email=a&password=b', 'application/x-www-form-urlencoded; charset=klingon'),
    ...['chrysalis_admin=%E0%A4%A', 'chrysalis_admin=%', `chrysalis_admin=${'a'.repeat(43)}`, '\u00ff=\u00ff'].flatMap((cookie) => [
      withCookie('GET', '/admin/login', cookie),
      withCookie('GET', '/admin/logout', cookie),
      withCookie('POST', '/admin/logout', cookie),
      withCookie('GET', '/admin/queues', cookie),
      withCookie('GET', '/admin/queues/api/queues', cookie),
    ]),
  ];
}
