import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, type HttpResponse } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;

/** What a console page sends with every call. */
const csrf = { 'x-chrysalis-csrf': '1' };

const sessionIdOf = (response: HttpResponse): string =>
  /chrysalis_session=([^;]*)/.exec(response.headers.get('set-cookie') ?? '')?.[1] ?? '';
const withCookie = (sessionId: string, headers: Record<string, string> = {}) => ({
  headers: { cookie: `chrysalis_session=${sessionId}`, ...headers },
});

async function signIn(email: string, password: string, headers: Record<string, string> = csrf): Promise<HttpResponse> {
  return request('POST', '/api/v1/auth/session', { body: { email, password }, headers });
}

/** A signed-in session id of `user`. */
async function sessionOf(user: { email: string; password: string }): Promise<string> {
  const response = await signIn(user.email, user.password);
  expect(response.status, response.text).toBe(201);
  return sessionIdOf(response);
}

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
}, 120_000);

afterAll(async () => {
  await app?.close();
});

describe('POST /auth/session (the console sign-in)', () => {
  it('answers 201 with an httpOnly, SameSite=Strict cookie scoped to /api/v1 that holds an opaque id, not a token', async () => {
    const response = await signIn(alice.email.toUpperCase(), alice.password);
    expect(response.status, response.text).toBe(201);
    expect(response.body).toMatchObject({ email: alice.email, role: 'user', customer_id: expect.any(String) });
    expect(Date.parse(response.body.expires_at) - Date.now()).toBeGreaterThan(7.9 * 3600_000);
    expect(response.text).not.toMatch(/access_token|refresh_token/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const cookie = response.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^chrysalis_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; SameSite=Strict/i);
    expect(cookie).toMatch(/; Path=\/api\/v1(;|$)/);
    expect(cookie).toMatch(/; Max-Age=28800/);
    expect(cookie).not.toMatch(/Secure/i); // plain HTTP outside production
    // Redis holds the session under a hash of the id, never the id itself, and it expires.
    const sessionId = sessionIdOf(response);
    const key = `${app.config.queuePrefix}:console-session:${createHash('sha256').update(sessionId).digest('hex')}`;
    expect(await app.deps.redis.ttl(key)).toBeGreaterThan(28_700);
    expect(await app.deps.redis.exists(`${app.config.queuePrefix}:console-session:${sessionId}`)).toBe(0);
  });

  it('answers 401 with the same detail for a wrong password and an unknown email, and sets no cookie', async () => {
    const wrong = await signIn(alice.email, 'not the password');
    const unknown = await signIn('nobody-here@example.test', 'not the password');
    expectProblem(wrong, 401, 'unauthorized');
    expectProblem(unknown, 401, 'unauthorized');
    expect(wrong.body.detail).toBe(unknown.body.detail);
    expect(wrong.headers.get('set-cookie')).toBeNull();
  });

  it('answers 400 naming each missing field, and an unknown one', async () => {
    expectProblem(await request('POST', '/api/v1/auth/session', { body: { email: alice.email }, headers: csrf }), 400, 'validation', [
      'body.password',
    ]);
    expectProblem(await request('POST', '/api/v1/auth/session', { body: { password: 'x' }, headers: csrf }), 400, 'validation', [
      'body.email',
    ]);
    expectProblem(
      await request('POST', '/api/v1/auth/session', { body: { email: alice.email, password: 'x', remember: true }, headers: csrf }),
      400,
      'validation',
      ['body.remember'],
    );
  });

  it('refuses a sign-in without the CSRF header, or posted from another site, with 403', async () => {
    const bare = await signIn(alice.email, alice.password, {});
    expectProblem(bare, 403, 'forbidden', ['header.x-chrysalis-csrf']);
    expect(bare.body.detail).toMatch(/X-Chrysalis-CSRF/);
    expect(bare.headers.get('set-cookie')).toBeNull();
    expectProblem(await signIn(alice.email, alice.password, { ...csrf, origin: 'https://evil.example' }), 403, 'forbidden');
    expectProblem(await signIn(alice.email, alice.password, { ...csrf, 'sec-fetch-site': 'cross-site' }), 403, 'forbidden');
  });

  it('shares the per-account failure count with POST /auth/login: after 10 failures, 429 even for the right password', async () => {
    const carol = await registerUser(request);
    for (let i = 0; i < 5; i++)
      expect((await request('POST', '/api/v1/auth/login', { body: { email: carol.email, password: `guess ${i}` } })).status).toBe(401);
    for (let i = 5; i < 10; i++) expect((await signIn(carol.email, `guess ${i}`)).status).toBe(401);
    const refused = await signIn(carol.email, carol.password);
    expectProblem(refused, 429, 'rate-limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('set-cookie')).toBeNull();
    // Another account is not affected.
    expect((await signIn(alice.email, alice.password)).status).toBe(201);
  }, 60_000);
});

describe('the session cookie in place of a bearer token', () => {
  let sessionId: string;

  beforeAll(async () => {
    sessionId = await sessionOf(alice);
  });

  it('authenticates reads: GET /auth/me and a job events stream', async () => {
    const me = await request('GET', '/api/v1/auth/me', withCookie(sessionId));
    expect(me.status, me.text).toBe(200);
    expect(me.body.email).toBe(alice.email);
    expect(me.headers.get('cache-control')).toBe('private, no-store');

    const substrate = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x * 2' },
    });
    const job = await request('POST', `/api/v1/substrates/${substrate.body.substrate_id}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x: 1 } },
    });
    expect(job.status).toBe(202);
    const controller = new AbortController();
    const stream = await fetch(`${app.baseUrl}/api/v1/jobs/${job.body.id}/events`, {
      headers: { cookie: `chrysalis_session=${sessionId}`, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = stream.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toMatch(/event: state/);
    controller.abort();
  });

  it('refuses a state-changing request it authenticates without the CSRF header with 403 problem+json, and changes nothing', async () => {
    const before = (await request('GET', '/api/v1/substrates', withCookie(sessionId))).body.items.length;
    const refused = await request('POST', '/api/v1/substrates', {
      body: { expression_type: 'expression', expression: 'x + 100' },
      ...withCookie(sessionId),
    });
    expectProblem(refused, 403, 'forbidden');
    expect(refused.body.detail).toMatch(/X-Chrysalis-CSRF/);
    expect((await request('GET', '/api/v1/substrates', withCookie(sessionId))).body.items.length).toBe(before);
    // A revoke of an API key is refused the same way: the key still works.
    const key = await request('POST', '/api/v1/api-keys', { token: alice.accessToken, body: { name: 'kept', service_type: 'compute' } });
    expectProblem(await request('DELETE', `/api/v1/api-keys/${key.body.id}`, withCookie(sessionId)), 403, 'forbidden');
    expect((await request('GET', '/api/v1/auth/me', { token: key.body.key })).status).toBe(200);
  });

  it('refuses one from another origin even with the CSRF header', async () => {
    const body = { expression_type: 'expression', expression: 'x + 101' };
    const crossSite: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'null' },
    ];
    for (const headers of crossSite)
      expectProblem(
        await request('POST', '/api/v1/substrates', { body, ...withCookie(sessionId, { ...csrf, ...headers }) }),
        403,
        'forbidden',
      );
  });

  it('accepts a state-changing request with the CSRF header from this origin', async () => {
    const created = await request('POST', '/api/v1/substrates', {
      body: { expression_type: 'expression', expression: 'x + 102' },
      ...withCookie(sessionId, { ...csrf, origin: app.baseUrl, 'sec-fetch-site': 'same-origin' }),
    });
    expect(created.status, created.text).toBe(201);
  });

  it('leaves bearer tokens as they were: no CSRF header needed, and a bearer token is judged alone', async () => {
    const created = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x + 103' },
    });
    expect(created.status).toBe(201);
    const forged = await request('GET', '/api/v1/auth/me', { token: 'not-a-token', ...withCookie(sessionId) });
    expectProblem(forged, 401, 'unauthorized');
  });

  it('refuses a forged or malformed session cookie with 401', async () => {
    expectProblem(await request('GET', '/api/v1/auth/me', withCookie('A'.repeat(43))), 401, 'unauthorized');
    expectProblem(await request('GET', '/api/v1/auth/me', withCookie('%E0%A4%A')), 401, 'unauthorized');
    expectProblem(await request('GET', '/api/v1/jobs', withCookie(`${sessionId}x`)), 401, 'unauthorized');
  });

  it("is another customer's nothing: Bob's cookie sees none of Alice's jobs", async () => {
    const bob = await registerUser(request);
    const bobSession = await sessionOf(bob);
    const aliceJobs = (await request('GET', '/api/v1/jobs', { token: alice.accessToken })).body.items;
    expect(aliceJobs.length).toBeGreaterThan(0);
    expect((await request('GET', '/api/v1/jobs', withCookie(bobSession))).body.items).toEqual([]);
    expect((await request('GET', `/api/v1/jobs/${aliceJobs[0].id}`, withCookie(bobSession))).status).toBe(404);
  });

  it('lets an admin sign in the same way and reach the admin routes; a user gets 403 there', async () => {
    const adminSession = await sessionOf({ email: 'admin@example.test', password: 'admin-password-123' });
    const listed = await request('GET', '/api/v1/admin/jobs', withCookie(adminSession));
    expect(listed.status, listed.text).toBe(200);
    expectProblem(await request('GET', '/api/v1/admin/jobs', withCookie(sessionId)), 403, 'forbidden');
  });
});

describe('DELETE /auth/session (sign out)', () => {
  it('ends the session server-side: the same cookie then answers 401', async () => {
    const sessionId = await sessionOf(alice);
    expect((await request('GET', '/api/v1/auth/me', withCookie(sessionId))).status).toBe(200);
    const out = await request('DELETE', '/api/v1/auth/session', withCookie(sessionId, csrf));
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^chrysalis_session=;.*Path=\/api\/v1.*Expires=Thu, 01 Jan 1970/);
    expectProblem(await request('GET', '/api/v1/auth/me', withCookie(sessionId)), 401, 'unauthorized');
    // Alice's other sessions and her tokens are untouched.
    expect((await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).status).toBe(200);
  });

  it('replaces the session a new sign-in from the same browser still carries', async () => {
    const first = await sessionOf(alice);
    const again = await request('POST', '/api/v1/auth/session', {
      body: { email: alice.email, password: alice.password },
      ...withCookie(first, csrf),
    });
    expect(again.status).toBe(201);
    const second = sessionIdOf(again);
    expect(second).not.toBe(first);
    expectProblem(await request('GET', '/api/v1/auth/me', withCookie(first)), 401, 'unauthorized');
    expect((await request('GET', '/api/v1/auth/me', withCookie(second))).status).toBe(200);
  });

  it('refuses a sign-out without the CSRF header with 403, and the session lives on', async () => {
    const sessionId = await sessionOf(alice);
    expectProblem(await request('DELETE', '/api/v1/auth/session', withCookie(sessionId)), 403, 'forbidden');
    expect((await request('GET', '/api/v1/auth/me', withCookie(sessionId))).status).toBe(200);
  });
});

describe('the per-IP sign-in limit', () => {
  let limited: TestApp;

  afterAll(async () => {
    await limited?.close();
  });

  it('is the one of POST /auth/login, counted together: past it, 429 with Retry-After', async () => {
    limited = await startTestApp({ RATE_LIMIT_LOGIN_PER_MIN: '3', TRUST_PROXY: '1' });
    const post = httpClient(limited.baseUrl);
    const body = { email: 'admin@example.test', password: 'admin-password-123' };
    expect((await post('POST', '/api/v1/auth/login', { body })).status).toBe(200);
    expect((await post('POST', '/api/v1/auth/session', { body, headers: csrf })).status).toBe(201);
    expect((await post('POST', '/api/v1/auth/session', { body: { ...body, password: 'wrong' }, headers: csrf })).status).toBe(401);
    const refused = await post('POST', '/api/v1/auth/session', { body, headers: csrf });
    expectProblem(refused, 429, 'rate-limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expectProblem(await post('POST', '/api/v1/auth/login', { body }), 429, 'rate-limited');
  }, 120_000);

  it('adds Secure to the cookie of a sign-in that came over HTTPS (behind a trusted proxy)', async () => {
    const post = httpClient(limited.baseUrl);
    const response = await post('POST', '/api/v1/auth/session', {
      body: { email: 'admin@example.test', password: 'admin-password-123' },
      // Another client address (the per-IP limit above is used up) whose proxy ended TLS.
      headers: { ...csrf, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' },
    });
    expect(response.status, response.text).toBe(201);
    expect(response.headers.get('set-cookie')).toMatch(/; Secure/);
  });
});
