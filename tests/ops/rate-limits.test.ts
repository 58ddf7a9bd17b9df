import { randomBytes, randomUUID } from 'node:crypto';
import { PrincipalCache } from '../../api/auth/principal.js';
import { sha256 } from '../../lib/crypto.js';
import { afterEach, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { placeName } from '../../api/concurrency-limits.js';
import { httpClient, waitFor, type HttpResponse } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/** The production per-IP limits (the test harness raises them for other suites). */
const realLimits = { RATE_LIMIT_REGISTER_PER_MIN: '5', RATE_LIMIT_LOGIN_PER_MIN: '10', RATE_LIMIT_MULTIPLIER: '1' };

let app: TestApp | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

const registration = (n: number) => ({
  email: `rate-${n}-${Date.now()}@example.test`,
  password: 'correct horse battery',
  accept_tos: true,
  tos_version: '1.0.0',
});
const wrongLogin = { email: 'nobody@example.test', password: 'not the password' };
/** A write: creates (or finds) a constant substrate. */
const createConstant = (request: ReturnType<typeof httpClient>, token: string, value: number) =>
  request('POST', '/api/v1/substrates', { token, body: { expression_type: 'constant', value } });

function expectLimitHeaders(response: HttpResponse, limit: number, remaining: number): void {
  expect(response.headers.get('ratelimit-limit')).toBe(String(limit));
  expect(response.headers.get('ratelimit-remaining')).toBe(String(remaining));
  const reset = Number(response.headers.get('ratelimit-reset'));
  expect(reset).toBeGreaterThanOrEqual(1);
  expect(reset).toBeLessThanOrEqual(60);
}

// bcrypt (cost 12) on every register and login: slow on a busy machine, hence the generous timeouts.
describe('per-IP limits on register and login', { timeout: 90_000 }, () => {
  it('lets five registrations from one address through with RateLimit headers, then answers 429 with Retry-After', async () => {
    app = await startTestApp(realLimits);
    const request = httpClient(app.baseUrl);
    for (let n = 1; n <= 5; n++) {
      const response = await request('POST', '/api/v1/auth/register', { body: registration(n) });
      expect(response.status, response.text).toBe(201);
      expectLimitHeaders(response, 5, 5 - n);
    }
    const refused = await request('POST', '/api/v1/auth/register', { body: registration(6) });
    expectProblem(refused, 429, 'rate-limited');
    expectLimitHeaders(refused, 5, 0);
    expect(refused.headers.get('retry-after')).toBe(refused.headers.get('ratelimit-reset'));
    expect(refused.body.detail).toMatch(/5 register attempts per minute/);
  });

  it('counts every login attempt from the socket address, whatever X-Forwarded-For claims', async () => {
    app = await startTestApp(realLimits);
    const request = httpClient(app.baseUrl);
    for (let n = 1; n <= 10; n++) {
      const response = await request('POST', '/api/v1/auth/login', { body: wrongLogin, headers: { 'x-forwarded-for': `203.0.113.${n}` } });
      expect(response.status).toBe(401);
      expectLimitHeaders(response, 10, 10 - n);
    }
    const spoofed = await request('POST', '/api/v1/auth/login', { body: wrongLogin, headers: { 'x-forwarded-for': '198.51.100.99' } });
    expectProblem(spoofed, 429, 'rate-limited');
    expect(spoofed.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('with TRUST_PROXY=1 counts the address the proxy forwarded', async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_LOGIN_PER_MIN: '2', TRUST_PROXY: '1' });
    const request = httpClient(app.baseUrl);
    const from = (ip: string) => request('POST', '/api/v1/auth/login', { body: wrongLogin, headers: { 'x-forwarded-for': ip } });
    expect((await from('198.51.100.1')).status).toBe(401);
    expect((await from('198.51.100.1')).status).toBe(401);
    expectProblem(await from('198.51.100.1'), 429, 'rate-limited');
    const other = await from('198.51.100.2');
    expect(other.status).toBe(401);
    expectLimitHeaders(other, 2, 1);
  });
});

describe('the per-IP limit on refresh and logout, which need no access token', { timeout: 90_000 }, () => {
  it('counts refreshes and logouts from one address together, answers 429 past it without rotating, and spares other addresses', async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_REFRESH_PER_MIN: '3', TRUST_PROXY: '1' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    const from = (ip: string, path: string, token: string) =>
      request('POST', `/api/v1/auth/${path}`, { body: { refresh_token: token }, headers: { 'x-forwarded-for': ip } });

    const refreshed = await from('198.51.100.7', 'refresh', user.refreshToken);
    expect(refreshed.status, refreshed.text).toBe(200);
    expectLimitHeaders(refreshed, 3, 2);
    expect((await from('198.51.100.7', 'refresh', 'rt_made_up')).status).toBe(401);
    expect((await from('198.51.100.7', 'logout', 'rt_made_up')).status).toBe(204);
    const refused = await from('198.51.100.7', 'refresh', refreshed.body.refresh_token);
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.body.detail).toMatch(/3 refresh attempts per minute/);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expectProblem(await from('198.51.100.7', 'logout', refreshed.body.refresh_token), 429, 'rate-limited');

    // The refused refresh rotated nothing: the token still works, from an address with budget left.
    const elsewhere = await from('198.51.100.8', 'refresh', refreshed.body.refresh_token);
    expect(elsewhere.status, elsewhere.text).toBe(200);
    expectLimitHeaders(elsewhere, 3, 2);
  });
});

describe('the per-IP budget of lookups of API keys the API has no answer cached for', { timeout: 90_000 }, () => {
  const madeUpKey = () => `sk_live_${randomBytes(32).toString('base64url')}`;

  it('answers 429 past it, before reading the database; known keys and other addresses go on', async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_KEY_LOOKUPS_PER_MIN: '3', TRUST_PROXY: '1' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    const created = await request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name: 'ci', service_type: 'compute' } });
    expect(created.status).toBe(201);
    const from = (ip: string, key: string) => request('GET', '/api/v1/jobs', { token: key, headers: { 'x-forwarded-for': ip } });

    const guesses = [madeUpKey(), madeUpKey(), madeUpKey()];
    for (const key of guesses) expect((await from('198.51.100.20', key)).status).toBe(401);
    const refused = await from('198.51.100.20', madeUpKey());
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.body.detail).toMatch(/at most 3 lookups of unknown API keys per minute from one address/);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // A key already answered for costs no lookup: the same made-up one is still a plain 401.
    expect((await from('198.51.100.20', guesses[0]!)).status).toBe(401);
    // The real key's first use from that address would be a lookup too, and waits; from another address it works,
    // and once known it works from the first one again.
    expectProblem(await from('198.51.100.20', created.body.key), 429, 'rate-limited');
    expect((await from('198.51.100.21', created.body.key)).status).toBe(200);
    expect((await from('198.51.100.20', created.body.key)).status).toBe(200);
    // Access tokens are checked by their signature, with no lookup to spend.
    expect((await from('198.51.100.20', user.accessToken)).status).toBe(200);
  });

  it('keeps made-up keys apart in the principal cache: a flood of them never pushes out a known principal', async () => {
    app = await startTestApp(realLimits);
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    const created = await request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name: 'ci', service_type: 'compute' } });
    const cache = new PrincipalCache(app.deps.orm.em.fork(), app.deps.redis, app.deps.config.queuePrefix, 30_000, 2);
    const knownHash = sha256(created.body.key as string);
    expect(await cache.byApiKeyHash(knownHash)).toMatchObject({ customerId: expect.any(String) });
    for (let n = 0; n < 5; n++) expect(await cache.byApiKeyHash(sha256(madeUpKey()))).toBeNull();
    expect(cache.knowsApiKey(knownHash)).toBe(true);
  });
});

describe('per-customer limits by tier', { timeout: 90_000 }, () => {
  it("limits a starter customer's writes to its tier figure per minute and answers 429 after it", async () => {
    // Multiplier 0.05: starter writes 100 → 5 a minute, reads 1,000 → 50, so the test stays short.
    app = await startTestApp({ ...realLimits, RATE_LIMIT_MULTIPLIER: '0.05' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    for (let n = 1; n <= 5; n++) {
      const response = await createConstant(request, user.accessToken, n);
      expect(response.status).toBe(201);
      expectLimitHeaders(response, 5, 5 - n);
    }
    const refused = await createConstant(request, user.accessToken, 6);
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.body.detail).toMatch(/compute service at tier starter allows 5 writes per minute/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Another customer has a count of its own.
    const other = await registerUser(request);
    expect((await createConstant(request, other.accessToken, 1)).status).toBe(201);
  });

  it('gives reads (GET) a budget of their own, ten times the writes: polling goes on once the writes are spent, and the reverse', async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_MULTIPLIER: '0.05' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    for (let n = 1; n <= 5; n++) expect((await createConstant(request, user.accessToken, n)).status).toBe(201);
    expectProblem(await createConstant(request, user.accessToken, 6), 429, 'rate-limited');

    for (let n = 1; n <= 50; n++) {
      const read = await request('GET', '/api/v1/jobs', { token: user.accessToken });
      expect(read.status).toBe(200);
      expectLimitHeaders(read, 50, 50 - n);
      expect(read.headers.get('ratelimit-policy')).toBe('"writes";q=5;w=60, "reads";q=50;w=60');
    }
    const refused = await request('GET', '/api/v1/jobs', { token: user.accessToken });
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.body.detail).toMatch(/compute service at tier starter allows 50 reads per minute/);

    // A fresh customer spends its reads first: its writes are untouched.
    const other = await registerUser(request);
    for (let n = 1; n <= 50; n++) expect((await request('GET', '/api/v1/jobs', { token: other.accessToken })).status).toBe(200);
    expectProblem(await request('GET', '/api/v1/jobs', { token: other.accessToken }), 429, 'rate-limited');
    expectLimitHeaders(await createConstant(request, other.accessToken, 1), 5, 4);
  });

  it('uses the tier of the called service: pro gets its own figures, enterprise no limit and no headers', async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_MULTIPLIER: '0.05' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    const me = await request('GET', '/api/v1/auth/me', { token: user.accessToken });
    const setTier = async (tier: string) => {
      await app!.sql(`update service_instances set tier = $1 where customer_id = $2 and service_type = 'compute'`, [
        tier,
        me.body.customer_id,
      ]);
      await app!.deps.principals.invalidateCustomer(me.body.customer_id);
    };

    await setTier('pro');
    expectLimitHeaders(await request('GET', '/api/v1/jobs', { token: user.accessToken }), 500, 499);
    expectLimitHeaders(await createConstant(request, user.accessToken, 1), 50, 49);

    await setTier('enterprise');
    for (let n = 0; n < 60; n++) {
      const response = await request('GET', '/api/v1/jobs', { token: user.accessToken });
      expect(response.status).toBe(200);
      expect(response.headers.get('ratelimit-limit')).toBeNull();
    }
    expect((await createConstant(request, user.accessToken, 2)).headers.get('ratelimit-limit')).toBeNull();
  });

  it("counts a non-admin's calls to /admin against its budget (403 with RateLimit headers, then 429); an admin's are not limited", async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_MULTIPLIER: '0.05' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    for (let n = 1; n <= 5; n++) {
      const response = await request('POST', '/api/v1/admin/jobs/retry', { token: user.accessToken, body: { dry_run: true } });
      expectProblem(response, 403, 'forbidden');
      expectLimitHeaders(response, 5, 5 - n);
    }
    const refused = await request('POST', '/api/v1/admin/jobs/retry', { token: user.accessToken, body: { dry_run: true } });
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expectProblem(await createConstant(request, user.accessToken, 1), 429, 'rate-limited');

    const adminToken = await loginAdmin(request);
    for (let n = 1; n <= 6; n++) {
      const response = await request('POST', '/api/v1/admin/jobs/retry', { token: adminToken, body: { dry_run: true } });
      expect(response.status, response.text).toBe(200);
      expect(response.headers.get('ratelimit-limit')).toBeNull();
    }
  });

  it('also limits /stats, /auth/me, /api-keys and /tos/accept: once the budgets are spent elsewhere they answer 429 too', async () => {
    app = await startTestApp({ ...realLimits, RATE_LIMIT_MULTIPLIER: '0.05' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    const spend = async (method: 'GET' | 'DELETE', path: string) => {
      for (let n = 0; n < 1000; n++) if ((await request(method, path, { token: user.accessToken })).status === 429) return;
      throw new Error(`${method} ${path} was never limited`);
    };
    // Whatever budgets the limiter keeps (one for all calls, or reads apart from writes), spend each.
    await spend('GET', '/api/v1/jobs');
    await spend('DELETE', `/api/v1/jobs/${randomUUID()}`);

    const calls: Array<[string, string, Record<string, unknown>?]> = [
      ['GET', '/api/v1/stats'],
      ['GET', '/api/v1/auth/me'],
      ['GET', '/api/v1/api-keys'],
      ['POST', '/api/v1/api-keys', { name: 'ci', service_type: 'compute' }],
      ['DELETE', `/api/v1/api-keys/${randomUUID()}`],
      ['POST', '/api/v1/tos/accept', { version: '1.0.0' }],
    ];
    for (const [method, path, body] of calls) {
      const response = await request(method, path, { token: user.accessToken, body });
      expectProblem(response, 429, 'rate-limited');
      expect(response.headers.get('retry-after'), `${method} ${path}`).toMatch(/^\d+$/);
    }
  });

  it('counts the requests the in-flight cap refuses against the budget: a client that keeps sending at its cap gets the rate limit', async () => {
    // Starter: one request in flight; reads 1,000 × 0.05 = 50 a minute. No worker runs: a `Prefer: wait` invoke stays in flight.
    app = await startTestApp({ ...realLimits, RATE_LIMIT_MULTIPLIER: '0.05', TIER_MAX_IN_FLIGHT: 'starter=1,pro=50,enterprise=50' });
    const request = httpClient(app.baseUrl);
    const user = await registerUser(request);
    const { customer_id: customerId } = (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body;
    const substrateId = await createExpressionSubstrate(request, user.accessToken, 'x * y');
    const abort = new AbortController();
    const held = fetch(`${app.baseUrl}/api/v1/substrates/${substrateId}/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json', prefer: 'wait=20' },
      body: JSON.stringify({ parameters: { x: 1, y: 2 } }),
      signal: abort.signal,
    }).catch(() => null);
    try {
      await waitFor(async () => (await app!.deps.leases.count(placeName('in-flight', customerId))) === 1, 10_000);

      const first = await request('GET', '/api/v1/jobs', { token: user.accessToken });
      expectProblem(first, 429, 'rate-limited');
      expect(first.body.detail).toMatch(/requests in flight/);
      expect(first.headers.get('retry-after')).toBe('1');
      const remaining = Number(first.headers.get('ratelimit-remaining'));
      expectLimitHeaders(first, 50, remaining);
      // Each refused request spends a read: the count goes down by one every time, to the end of the budget.
      for (let n = 1; n <= remaining; n++) {
        const refused = await request('GET', '/api/v1/jobs', { token: user.accessToken });
        expect(refused.body.detail).toMatch(/requests in flight/);
        expectLimitHeaders(refused, 50, remaining - n);
      }
      const limited = await request('GET', '/api/v1/jobs', { token: user.accessToken });
      expectProblem(limited, 429, 'rate-limited');
      expect(limited.body.detail).toMatch(/compute service at tier starter allows 50 reads per minute/);
      expectLimitHeaders(limited, 50, 0);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(1);
      expect(limited.headers.get('retry-after')).toBe(limited.headers.get('ratelimit-reset'));
      // The in-flight place is still taken by the held invoke: the rate-limited requests took none.
      expect(await app.deps.leases.count(placeName('in-flight', customerId))).toBe(1);
    } finally {
      abort.abort();
      await held;
    }
    // Once the place is free, reads stay refused until the window ends; the writes budget is its own.
    await waitFor(async () => (await app!.deps.leases.count(placeName('in-flight', customerId))) === 0, 10_000);
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).body.detail).toMatch(/allows 50 reads per minute/);
    expect((await createConstant(request, user.accessToken, 1)).status).toBe(201);
  });
});
