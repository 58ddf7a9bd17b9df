import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

describe('security headers', () => {
  it('gives JSON routes, errors included, a CSP that loads nothing and forbids framing', async () => {
    for (const response of [await request('GET', '/api/v1/health'), await request('GET', '/api/v1/jobs')]) {
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(response.headers.get('x-powered-by')).toBeNull();
      // Stage timings only with SERVER_TIMING (tests/ops/server-timing.test.ts).
      expect(response.headers.get('server-timing')).toBeNull();
      // Headers for HTML documents and old plugins are left off JSON answers.
      for (const name of [
        'cross-origin-opener-policy',
        'origin-agent-cluster',
        'x-dns-prefetch-control',
        'x-download-options',
        'x-permitted-cross-domain-policies',
        'x-xss-protection',
      ]) {
        expect(response.headers.get(name)).toBeNull();
      }
    }
  });

  it('leaves the CSP of the HTML pages (Bull Board, API reference) to the routes that serve them', async () => {
    for (const path of ['/admin/login', '/api/v1/docs']) {
      const response = await request('GET', path);
      // Whatever CSP a page has is its own (the admin login sets a hash-based one), never the JSON routes' one.
      expect(response.headers.get('content-security-policy')).not.toBe("default-src 'none';frame-ancestors 'none'");
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    }
  });
});
