import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem, jwtClaims } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;

/** This app's configured version is 2.0.0, as if the terms had moved on from 1.0.0. */
beforeAll(async () => {
  app = await startTestApp({ TOS_VERSION: '2.0.0' });
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

/** Forgets the user's acceptances, as if they had only ever accepted an older version, and tells the cache. */
async function withdrawAcceptance(user: TestUser): Promise<void> {
  const { sub, cid } = jwtClaims(user.accessToken) as { sub: string; cid: string };
  await app.sql('delete from tos_acceptances where user_id = $1', [sub]);
  await app.deps.principals.invalidateCustomer(cid);
}

describe('the terms-of-service gate', () => {
  it('shows the configured version with GET /tos', async () => {
    const response = await request('GET', '/api/v1/tos');
    expect(response.status).toBe(200);
    expect(response.body.version).toBe('2.0.0');
    expect(response.body.text.length).toBeGreaterThan(100);
  });

  it('lets a user who registered under the current version call the API', async () => {
    const user = await registerUser(request, '2.0.0');
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
  });

  it('refuses registration under an older version with 422', async () => {
    const response = await request('POST', '/api/v1/auth/register', {
      body: { email: 'old-terms@example.test', password: 'long enough password', accept_tos: true, tos_version: '1.0.0' },
    });
    expectProblem(response, 422, 'unprocessable', ['body.tos_version']);
  });

  it('answers 403 tos-required until the current version is accepted, then lets calls through again', async () => {
    const user = await registerUser(request, '2.0.0');
    await withdrawAcceptance(user);

    const gated = await request('GET', '/api/v1/jobs', { token: user.accessToken });
    expectProblem(gated, 403, 'tos-required');
    expect(gated.body.detail).toContain('2.0.0');
    expectProblem(
      await request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name: 'ci', service_type: 'compute' } }),
      403,
      'tos-required',
    );

    // /auth/me and /tos/accept stay reachable behind the gate.
    const me = await request('GET', '/api/v1/auth/me', { token: user.accessToken });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ tos_version_accepted: null, tos_current: false, tos_version_current: '2.0.0' });

    const accepted = await request('POST', '/api/v1/tos/accept', { token: user.accessToken, body: { version: '2.0.0' } });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toEqual({ version: '2.0.0', accepted_at: expect.any(String) });
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
    expect((await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body).toMatchObject({
      tos_version_accepted: '2.0.0',
      tos_current: true,
    });
  });

  it('refuses to accept a version other than the current one with 422', async () => {
    const user = await registerUser(request, '2.0.0');
    await withdrawAcceptance(user);
    expectProblem(
      await request('POST', '/api/v1/tos/accept', { token: user.accessToken, body: { version: '1.0.0' } }),
      422,
      'unprocessable',
      ['body.version'],
    );
    expectProblem(await request('GET', '/api/v1/jobs', { token: user.accessToken }), 403, 'tos-required');
  });

  it('makes a re-accepted version current again after the configured version was rolled back', async () => {
    // The user accepted 2.0.0, then 3.0.0 while it was current; now the configuration is back at 2.0.0.
    const user = await registerUser(request, '2.0.0');
    const { sub, cid } = jwtClaims(user.accessToken) as { sub: string; cid: string };
    await app.sql(`insert into tos_acceptances (id, user_id, version, accepted_at) values (gen_random_uuid(), $1, '3.0.0', now())`, [sub]);
    await app.deps.principals.invalidateCustomer(cid);
    expectProblem(await request('GET', '/api/v1/jobs', { token: user.accessToken }), 403, 'tos-required');
    expect((await request('POST', '/api/v1/tos/accept', { token: user.accessToken, body: { version: '2.0.0' } })).status).toBe(200);
    expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
  });

  it('holds API keys at the gate too, until a user of their customer accepts the current version', async () => {
    const user = await registerUser(request, '2.0.0');
    const created = await request('POST', '/api/v1/api-keys', {
      token: user.accessToken,
      body: { name: 'worker', service_type: 'compute' },
    });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    expect((await request('GET', '/api/v1/jobs', { token: key })).status).toBe(200);
    await withdrawAcceptance(user);

    const gated = await request('GET', '/api/v1/jobs', { token: key });
    expectProblem(gated, 403, 'tos-required');
    expect(gated.body.detail).toContain('2.0.0');
    // A key cannot accept the terms for its customer, but may still ask who it is.
    expectProblem(await request('POST', '/api/v1/tos/accept', { token: key, body: { version: '2.0.0' } }), 403, 'forbidden');
    expect((await request('GET', '/api/v1/auth/me', { token: key })).status).toBe(200);

    expect((await request('POST', '/api/v1/tos/accept', { token: user.accessToken, body: { version: '2.0.0' } })).status).toBe(200);
    expect((await request('GET', '/api/v1/jobs', { token: key })).status).toBe(200);
  });

  it('rejects POST /tos/accept without credentials with 401 and with an unknown field with 400', async () => {
    expectProblem(await request('POST', '/api/v1/tos/accept', { body: { version: '2.0.0' } }), 401, 'unauthorized');
    const user = await registerUser(request, '2.0.0');
    expectProblem(
      await request('POST', '/api/v1/tos/accept', { token: user.accessToken, body: { version: '2.0.0', all: true } }),
      400,
      'validation',
      ['body.all'],
    );
  });

  it('has the bootstrap admin accept the configured version', async () => {
    const response = await request('POST', '/api/v1/auth/login', { body: { email: 'admin@example.test', password: 'admin-password-123' } });
    expect((await request('GET', '/api/v1/jobs', { token: response.body.access_token })).status).toBe(200);
  });
});
