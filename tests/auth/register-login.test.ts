import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem, jwtClaims } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;

const uniqueEmail = (label: string) => `${label}-${Math.random().toString(36).slice(2, 10)}@example.test`;
const register = (body: Record<string, unknown>) =>
  request('POST', '/api/v1/auth/register', {
    body: { email: uniqueEmail('reg'), password: 'long enough password', accept_tos: true, tos_version: '1.0.0', ...body },
  });

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
});

describe('POST /auth/register', () => {
  it('creates the user, its customer, the TOS acceptance and a starter compute service', async () => {
    const email = uniqueEmail('new');
    const response = await register({ email });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      id: expect.any(String),
      email,
      customer_id: expect.any(String),
      role: 'user',
      created_at: expect.any(String),
    });
    expect(new Date(response.body.created_at).toISOString()).toBe(response.body.created_at);

    const [user] = await app.sql<{ password_hash: string; customer_id: string }>(
      'select password_hash, customer_id from users where id = $1',
      [response.body.id],
    );
    expect(user?.customer_id).toBe(response.body.customer_id);
    // The test apps hash at PASSWORD_HASH_COST=4 (the default 12 is asserted in tests/unit/password-hash-cost-config).
    expect(user?.password_hash).toMatch(/^\$2[aby]\$04\$/);
    expect(await app.sql('select id from customers where id = $1', [response.body.customer_id])).toHaveLength(1);
    expect(await app.sql('select version from tos_acceptances where user_id = $1', [response.body.id])).toEqual([{ version: '1.0.0' }]);
    expect(
      await app.sql('select service_type, tier, enabled from service_instances where customer_id = $1', [response.body.customer_id]),
    ).toEqual([{ service_type: 'compute', tier: 'starter', enabled: true }]);
  });

  it('stores the email lowercased, and login accepts it in any case', async () => {
    const email = uniqueEmail('MiXeD').replace('example', 'Example');
    const response = await register({ email, password: 'mixed case login' });
    expect(response.status).toBe(201);
    expect(response.body.email).toBe(email.toLowerCase());
    const loggedIn = await request('POST', '/api/v1/auth/login', { body: { email: email.toUpperCase(), password: 'mixed case login' } });
    expect(loggedIn.status).toBe(200);
  });

  it('answers 409 conflict for an email already registered, whatever its case', async () => {
    expectProblem(await register({ email: alice.email }), 409, 'conflict');
    expectProblem(await register({ email: alice.email.toUpperCase() }), 409, 'conflict');
  });

  it('accepts a password of exactly 72 bytes', async () => {
    expect((await register({ password: 'é'.repeat(36) })).status).toBe(201);
  });

  it('rejects a password over 72 bytes with 400 naming body.password, even when it is under 72 characters', async () => {
    const password = 'é'.repeat(37); // 37 characters, 74 bytes
    expect(password.length).toBeLessThanOrEqual(72);
    expectProblem(await register({ password }), 400, 'validation', ['body.password']);
  });

  it('rejects a password under 8 bytes with 400 naming body.password', async () => {
    expectProblem(await register({ password: 'short' }), 400, 'validation', ['body.password']);
  });

  it('rejects accept_tos: false with 422', async () => {
    expectProblem(await register({ accept_tos: false }), 422, 'unprocessable', ['body.accept_tos']);
  });

  it('rejects accept_tos given as a string with 400', async () => {
    expectProblem(await register({ accept_tos: 'true' }), 400, 'validation', ['body.accept_tos']);
  });

  it('rejects a tos_version other than the current one with 422', async () => {
    expectProblem(await register({ tos_version: '0.9.0' }), 422, 'unprocessable', ['body.tos_version']);
  });

  it('rejects a malformed email with 400 naming body.email', async () => {
    expectProblem(await register({ email: 'not-an-email' }), 400, 'validation', ['body.email']);
  });

  it('rejects an unknown field with 400 naming the field', async () => {
    expectProblem(await register({ role: 'admin' }), 400, 'validation', ['body.role']);
  });

  it('rejects missing fields with 400 naming each', async () => {
    const response = await request('POST', '/api/v1/auth/register', { body: { email: uniqueEmail('partial') } });
    expectProblem(response, 400, 'validation', ['body.password', 'body.accept_tos', 'body.tos_version']);
  });

  it('rejects malformed JSON with 400 problem+json', async () => {
    expectProblem(await request('POST', '/api/v1/auth/register', { rawBody: '{"email": "a@b.test",' }), 400, 'validation', ['body']);
  });

  it('creates nothing when the request is refused', async () => {
    const email = uniqueEmail('refused');
    await register({ email, tos_version: '0.1.0' });
    expect(await app.sql('select id from users where email = $1', [email])).toHaveLength(0);
  });
});

describe('POST /auth/login', () => {
  it('answers an access token, a refresh token, token_type bearer and expires_in 3600, not cacheable', async () => {
    const response = await request('POST', '/api/v1/auth/login', { body: { email: alice.email, password: alice.password } });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      access_token: expect.any(String),
      refresh_token: expect.stringMatching(/^rt_/),
      token_type: 'bearer',
      expires_in: 3600,
    });
    expect(response.headers.get('cache-control')).toBe('no-store');
    const claims = jwtClaims(response.body.access_token);
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
    expect(
      await app.sql('select id from refresh_tokens where token_hash = encode(sha256($1::bytea), $2)', [response.body.refresh_token, 'hex']),
    ).toHaveLength(1);
  });

  it('answers 401 with the same detail for a wrong password and for an unknown email', async () => {
    const wrongPassword = await request('POST', '/api/v1/auth/login', { body: { email: alice.email, password: 'not the password' } });
    const unknownEmail = await request('POST', '/api/v1/auth/login', {
      body: { email: uniqueEmail('nobody'), password: 'not the password' },
    });
    expectProblem(wrongPassword, 401, 'unauthorized');
    expectProblem(unknownEmail, 401, 'unauthorized');
    expect(unknownEmail.body.detail).toBe(wrongPassword.body.detail);
  });

  it('refuses a password that matches only in its first 72 bytes', async () => {
    const email = uniqueEmail('long');
    const password = 'x'.repeat(72);
    expect((await register({ email, password })).status).toBe(201);
    await login(request, email, password);
    expectProblem(await request('POST', '/api/v1/auth/login', { body: { email, password: `${password}yz` } }), 401, 'unauthorized');
  });

  // Ten bcrypt comparisons or more each: slow on a busy machine, hence the generous timeouts.
  it(
    'refuses an account with 429 and Retry-After after 10 failed logins, even with the right password; other accounts still log in',
    { timeout: 90_000 },
    async () => {
      // The per-IP login limit is raised for tests, so only the per-account count can refuse here.
      const email = uniqueEmail('guessed');
      expect((await register({ email, password: 'the real password' })).status).toBe(201);
      for (let n = 1; n <= 10; n++)
        expectProblem(await request('POST', '/api/v1/auth/login', { body: { email, password: `guess ${n}` } }), 401, 'unauthorized');
      const refused = await request('POST', '/api/v1/auth/login', { body: { email, password: 'the real password' } });
      expectProblem(refused, 429, 'rate-limited');
      expect(refused.body.detail).toMatch(/failed logins/);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(60);
      expect(retryAfter).toBeLessThanOrEqual(900);
      // Its RateLimit headers are the account's, not the per-address budget's.
      expect(refused.headers.get('ratelimit-limit')).toBe('10');
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
      expect(refused.headers.get('ratelimit-reset')).toBe(String(retryAfter));
      expect((await request('POST', '/api/v1/auth/login', { body: { email: alice.email, password: alice.password } })).status).toBe(200);
    },
  );

  it(
    'counts failed logins to an unknown email the same way, so a 429 does not tell which accounts exist',
    { timeout: 90_000 },
    async () => {
      const email = uniqueEmail('nobody');
      for (let n = 1; n <= 10; n++)
        expectProblem(await request('POST', '/api/v1/auth/login', { body: { email, password: `guess ${n}` } }), 401, 'unauthorized');
      expectProblem(await request('POST', '/api/v1/auth/login', { body: { email, password: 'guess 11' } }), 429, 'rate-limited');
    },
  );

  it("forgets an account's failed logins once it logs in", { timeout: 90_000 }, async () => {
    const email = uniqueEmail('forgetful');
    expect((await register({ email, password: 'the real password' })).status).toBe(201);
    for (let round = 0; round < 2; round++) {
      for (let n = 1; n <= 6; n++)
        expectProblem(await request('POST', '/api/v1/auth/login', { body: { email, password: `guess ${n}` } }), 401, 'unauthorized');
      expect((await request('POST', '/api/v1/auth/login', { body: { email, password: 'the real password' } })).status).toBe(200);
    }
  });

  it('rejects an unknown field with 400 naming it', async () => {
    const response = await request('POST', '/api/v1/auth/login', {
      body: { email: alice.email, password: alice.password, remember: true },
    });
    expectProblem(response, 400, 'validation', ['body.remember']);
  });

  it('rejects a missing body with 400', async () => {
    expectProblem(await request('POST', '/api/v1/auth/login'), 400, 'validation');
  });
});

describe('access tokens', () => {
  it('authenticate GET /auth/me, which describes the user', async () => {
    const response = await request('GET', '/api/v1/auth/me', { token: alice.accessToken });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: jwtClaims(alice.accessToken).sub,
      email: alice.email,
      role: 'user',
      customer_id: jwtClaims(alice.accessToken).cid,
      tos_version_accepted: '1.0.0',
      tos_current: true,
      tos_version_current: '1.0.0',
      api_key_id: null,
    });
  });

  it('rejects a request without a bearer token with 401 and WWW-Authenticate', async () => {
    const response = await request('GET', '/api/v1/auth/me');
    expectProblem(response, 401, 'unauthorized');
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('rejects a forged token with 401', async () => {
    const { sub, cid } = jwtClaims(alice.accessToken);
    const forged = jwt.sign({ sub, cid, role: 'admin' }, 'another-secret-that-is-long-enough-0123456789', {
      algorithm: 'HS256',
      expiresIn: 3600,
    });
    expectProblem(await request('GET', '/api/v1/auth/me', { token: forged }), 401, 'unauthorized');
  });

  it('rejects a correctly signed token naming another customer than its user, with the user cached or not', async () => {
    const mallory = await registerUser(request);
    const { sub, cid: own } = jwtClaims(mallory.accessToken) as { sub: string; cid: string };
    const { cid: victim } = jwtClaims(alice.accessToken);
    const crossed = jwt.sign({ sub, cid: victim, role: 'user' }, app.config.jwtSecret, { algorithm: 'HS256', expiresIn: 3600 });
    await app.deps.principals.invalidateCustomer(own);
    expectProblem(await request('GET', '/api/v1/auth/me', { token: crossed }), 401, 'unauthorized');
    expect((await request('GET', '/api/v1/auth/me', { token: mallory.accessToken })).status).toBe(200);
    expectProblem(await request('GET', '/api/v1/auth/me', { token: crossed }), 401, 'unauthorized');
  });

  it('rejects an expired token with 401', async () => {
    const { sub, cid } = jwtClaims(alice.accessToken);
    const expired = jwt.sign({ sub, cid, role: 'user', exp: Math.floor(Date.now() / 1000) - 60 }, app.config.jwtSecret, {
      algorithm: 'HS256',
    });
    expectProblem(await request('GET', '/api/v1/auth/me', { token: expired }), 401, 'unauthorized');
  });

  it('rejects a correctly signed token without exp with 401: it would never expire', async () => {
    const { sub, cid } = jwtClaims(alice.accessToken);
    const forever = jwt.sign({ sub, cid, role: 'user' }, app.config.jwtSecret, { algorithm: 'HS256' });
    expect(jwtClaims(forever)).not.toHaveProperty('exp');
    expectProblem(await request('GET', '/api/v1/auth/me', { token: forever }), 401, 'unauthorized');
  });

  it('rejects a correctly signed token whose sub is not a UUID with 401, not 500', async () => {
    const { cid } = jwtClaims(alice.accessToken);
    const odd = jwt.sign({ sub: 'not-a-uuid', cid, role: 'user' }, app.config.jwtSecret, { algorithm: 'HS256', expiresIn: 3600 });
    expectProblem(await request('GET', '/api/v1/auth/me', { token: odd }), 401, 'unauthorized');
  });

  it('rejects alg:none tokens with 401', async () => {
    const { sub, cid } = jwtClaims(alice.accessToken);
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ sub, cid, role: 'admin', iat: now, exp: now + 3600 })}.`;
    expectProblem(await request('GET', '/api/v1/auth/me', { token: unsigned }), 401, 'unauthorized');
  });

  it('rejects a token signed with another HS algorithm than HS256', async () => {
    const { sub, cid } = jwtClaims(alice.accessToken);
    const hs512 = jwt.sign({ sub, cid, role: 'user' }, app.config.jwtSecret, { algorithm: 'HS512', expiresIn: 3600 });
    expectProblem(await request('GET', '/api/v1/auth/me', { token: hs512 }), 401, 'unauthorized');
  });
});

describe('GET /tos', () => {
  it('shows the current version and the text without credentials', async () => {
    const response = await request('GET', '/api/v1/tos');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ version: '1.0.0', text: expect.stringContaining('Terms of Service') });
  });
});
