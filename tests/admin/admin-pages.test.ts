import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { everyQueue } from '../helpers/queues.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let user: TestUser;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  user = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
});

/** Posts the login form as a browser on this host would. */
async function postLogin(email: string, password: string, headers: Record<string, string> = {}) {
  return fetch(`${app.baseUrl}/admin/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.baseUrl, ...headers },
    body: new URLSearchParams({ email, password }).toString(),
  });
}

const sessionCookie = (response: Response) => /chrysalis_admin=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1];

describe('admin login and Bull Board', () => {
  it('sends an anonymous visitor of /admin/queues to the login page', async () => {
    const response = await request('GET', '/admin/queues');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin/login');
    const login = await request('GET', '/admin/login');
    expect(login.status).toBe(200);
    expect(login.headers.get('content-type')).toMatch(/^text\/html/);
    expect(login.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(login.text).toMatch(/<input type="email" name="email"/);
    expect(login.text).toMatch(/<input type="password" name="password"/);
  });

  it("answers Bull Board's JSON API with 401 without a session", async () => {
    const response = await request('GET', '/admin/queues/api/queues');
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('logs the admin in with an httpOnly, SameSite=Strict cookie scoped to /admin and a 303 to the board', async () => {
    const response = await postLogin('ADMIN@example.test', 'admin-password-123');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin/queues');
    const cookie = response.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/chrysalis_admin=[A-Za-z0-9_-]{43}/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/admin/);
    expect(cookie).not.toMatch(/Secure/i); // only in production
    const board = await request('GET', '/admin/queues', { headers: { cookie: `chrysalis_admin=${sessionCookie(response)}` } });
    expect(board.status).toBe(200);
    expect(board.text).toMatch(/__UI_CONFIG__/);
    const queues = await request('GET', '/admin/queues/api/queues', { headers: { cookie: `chrysalis_admin=${sessionCookie(response)}` } });
    expect(queues.status).toBe(200);
    const listed = queues.body.queues.map((queue: { name: string }) => queue.name).sort();
    expect(listed).toEqual(
      everyQueue(app.deps)
        .map((queue) => queue.name)
        .sort(),
    );
    // Every shard of a sharded type is listed, each under its own hash tag; the others once.
    const shards = Array.from({ length: app.config.queueShards }, (_, shard) => `{invoke.${shard}}`);
    expect(listed).toEqual(expect.arrayContaining([...shards, '{metering}', '{webhook-delivery}', '{schedule-tick}']));
  });

  it('re-renders the form with 401 for a wrong password', async () => {
    const response = await postLogin('admin@example.test', 'not-the-password');
    expect(response.status).toBe(401);
    expect(sessionCookie(response)).toBeUndefined();
    const html = await response.text();
    expect(html).toMatch(/role="alert"/);
    expect(html).toContain('value="admin@example.test"');
  });

  it('refuses a user who is not an admin with 401, even with the right password', async () => {
    const response = await postLogin(user.email, user.password);
    expect(response.status).toBe(401);
    expect(sessionCookie(response)).toBeUndefined();
  });

  it('answers 400 with the form for a login without a password', async () => {
    const response = await fetch(`${app.baseUrl}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=admin%40example.test',
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/<form method="post" action="\/admin\/login">/);
  });

  it('refuses a login posted from another origin with 403', async () => {
    const response = await postLogin('admin@example.test', 'admin-password-123', { origin: 'https://evil.example' });
    expect(response.status).toBe(403);
    expect(sessionCookie(response)).toBeUndefined();
  });

  it('refuses a post from a page of this host under another scheme (https → http) with 403: origins, not hosts, must match', async () => {
    const response = await postLogin('admin@example.test', 'admin-password-123', { origin: app.baseUrl.replace(/^http:/, 'https:') });
    expect(response.status).toBe(403);
    expect(sessionCookie(response)).toBeUndefined();
  });

  it('accepts `Origin: null` only when Sec-Fetch-Site vouches for a same-origin post', async () => {
    expect((await postLogin('admin@example.test', 'admin-password-123', { origin: 'null' })).status).toBe(403);
    const vouched = await postLogin('admin@example.test', 'admin-password-123', { origin: 'null', 'sec-fetch-site': 'same-origin' });
    expect(vouched.status).toBe(303);
  });

  it('refuses a forged or unknown session cookie', async () => {
    const response = await request('GET', '/admin/queues', { headers: { cookie: `chrysalis_admin=${'A'.repeat(43)}` } });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin/login');
  });

  it('logs out: the session is deleted in Redis and the cookie cleared', async () => {
    const cookie = `chrysalis_admin=${sessionCookie(await postLogin('admin@example.test', 'admin-password-123'))}`;
    expect((await request('GET', '/admin/queues', { headers: { cookie } })).status).toBe(200);
    const confirm = await request('GET', '/admin/logout', { headers: { cookie } });
    expect(confirm.text).toContain('admin@example.test');
    const logout = await fetch(`${app.baseUrl}/admin/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin: app.baseUrl },
    });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('location')).toBe('/admin/login');
    expect(logout.headers.get('set-cookie')).toMatch(/chrysalis_admin=;.*Expires=Thu, 01 Jan 1970/);
    expect((await request('GET', '/admin/queues', { headers: { cookie } })).status).toBe(303);
  });

  it('refuses a cross-site Bull Board action (retry, clean…) even with a valid session', async () => {
    const cookie = `chrysalis_admin=${sessionCookie(await postLogin('admin@example.test', 'admin-password-123'))}`;
    const response = await request('PUT', '/admin/queues/api/queues/invoke/retry/failed', {
      headers: { cookie, 'sec-fetch-site': 'cross-site' },
    });
    expect(response.status).toBe(403);
  });
});

describe('admin login behind a proxy (TRUST_PROXY=1)', () => {
  let proxied: TestApp;
  beforeAll(async () => {
    proxied = await startTestApp({ TRUST_PROXY: '1' });
  });
  afterAll(async () => {
    await proxied?.close();
  });

  const postProxiedLogin = (password: string, headers: Record<string, string>, email = 'admin@example.test') =>
    fetch(`${proxied.baseUrl}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: proxied.baseUrl, ...headers },
      body: new URLSearchParams({ email, password }).toString(),
    });

  it('compares the Origin with the scheme the proxy forwarded (X-Forwarded-Proto)', async () => {
    const httpsOrigin = proxied.baseUrl.replace(/^http:/, 'https:');
    // An unknown account: past the origin check, the login itself fails with 401 (and no admin failure is counted).
    const viaTls = await postProxiedLogin('whatever', { origin: httpsOrigin, 'x-forwarded-proto': 'https' }, 'nobody@example.test');
    expect(viaTls.status).toBe(401);
    expect(
      (await postProxiedLogin('whatever', { origin: proxied.baseUrl, 'x-forwarded-proto': 'https' }, 'nobody@example.test')).status,
    ).toBe(403);
  });

  it(
    'refuses an account with 429 and Retry-After after 10 failed logins, whatever addresses they come from',
    { timeout: 90_000 },
    async () => {
      // A new address each time: the per-IP limit (10 a minute) never trips, the per-account one must.
      for (let n = 1; n <= 10; n++)
        expect((await postProxiedLogin(`guess ${n}`, { 'x-forwarded-for': `198.51.100.${n}` })).status).toBe(401);
      const refused = await postProxiedLogin('admin-password-123', { 'x-forwarded-for': '198.51.100.11' });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(60);
      expect(await refused.text()).toMatch(/Too many failed attempts/);
      expect(sessionCookie(refused)).toBeUndefined();
    },
  );
});
