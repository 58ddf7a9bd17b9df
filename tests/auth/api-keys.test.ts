import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptSecret } from '../../lib/crypto.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { outOfRangeTimes } from '../helpers/out-of-range-times.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem, jwtClaims } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

const inOneHour = () => new Date(Date.now() + 3600_000).toISOString();

async function createKey(user: TestUser, body: Record<string, unknown> = {}) {
  const response = await request('POST', '/api/v1/api-keys', {
    token: user.accessToken,
    body: { name: 'ci', service_type: 'compute', ...body },
  });
  expect(response.status, response.text).toBe(201);
  return response.body as {
    id: string;
    name: string;
    service_type: string;
    prefix: string;
    key: string;
    expires_at: string | null;
    created_at: string;
  };
}

const listJobs = (token: string) => request('GET', '/api/v1/jobs', { token });

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  [alice, bob] = await Promise.all([registerUser(request), registerUser(request)]);
});

afterAll(async () => {
  await app?.close();
});

describe('POST /api-keys', () => {
  it('answers 201 with the sk_live_ key shown once, and stores only its SHA-256 hash and an AES-256-GCM ciphertext', async () => {
    const response = await request('POST', '/api/v1/api-keys', {
      token: alice.accessToken,
      body: { name: 'deploy', service_type: 'compute' },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const key = response.body.key as string;
    expect(key).toMatch(/^sk_live_[A-Za-z0-9_-]{43}$/);
    expect(response.body).toEqual({
      id: expect.any(String),
      name: 'deploy',
      service_type: 'compute',
      prefix: key.slice(0, 12),
      key,
      expires_at: null,
      created_at: expect.any(String),
    });
    const [row] = await app.sql<{ key_hash: string; encrypted_key: string; customer_id: string }>(
      'select key_hash, encrypted_key, customer_id from api_keys where id = $1',
      [response.body.id],
    );
    expect(row?.key_hash).toBe(createHash('sha256').update(key).digest('hex'));
    expect(row?.encrypted_key).not.toContain(key);
    expect(decryptSecret(app.config.vaultKey, row!.encrypted_key)).toBe(key);
    expect(row?.customer_id).toBe(jwtClaims(alice.accessToken).cid);
  });

  it('issues a key that authenticates GET /api/v1/jobs as a bearer token', async () => {
    const { key } = await createKey(alice);
    expect((await listJobs(key)).status).toBe(200);
  });

  it('accepts an expires_at in the future and echoes it', async () => {
    const expiresAt = inOneHour();
    const created = await createKey(alice, { expires_at: expiresAt });
    expect(created.expires_at).toBe(expiresAt);
  });

  it('accepts another well-formed service type, such as seal', async () => {
    expect((await createKey(alice, { service_type: 'seal' })).service_type).toBe('seal');
  });

  it('accepts the last instant of year 9999 as expires_at, and refuses a later one or year 0 with 400 naming it (not a 500)', async () => {
    const latest = await createKey(alice, { expires_at: '9999-12-31T23:59:59.999Z' });
    expect(latest.expires_at).toBe('9999-12-31T23:59:59.999Z');
    for (const expiresAt of outOfRangeTimes) {
      const response = await request('POST', '/api/v1/api-keys', {
        token: alice.accessToken,
        body: { name: 'far', service_type: 'compute', expires_at: expiresAt },
      });
      expectProblem(response, 400, 'validation', ['body.expires_at']);
      const rotated = await request('POST', `/api/v1/api-keys/${latest.id}/rotate`, {
        token: alice.accessToken,
        body: { expires_at: expiresAt },
      });
      expectProblem(rotated, 400, 'validation', ['body.expires_at']);
    }
  });

  it('rejects an expires_at in the past with 422', async () => {
    const response = await request('POST', '/api/v1/api-keys', {
      token: alice.accessToken,
      body: { name: 'old', service_type: 'compute', expires_at: '2020-01-01T00:00:00Z' },
    });
    expectProblem(response, 422, 'unprocessable', ['body.expires_at']);
  });

  it('rejects an expires_at that is not an ISO 8601 timestamp with 400', async () => {
    const response = await request('POST', '/api/v1/api-keys', {
      token: alice.accessToken,
      body: { name: 'x', service_type: 'compute', expires_at: 'next tuesday' },
    });
    expectProblem(response, 400, 'validation', ['body.expires_at']);
  });

  it('answers an unknown service_type with 400 listing the accepted values: compute and the edge services', async () => {
    for (const serviceType of ['teleport', 'Compute!']) {
      const response = await request('POST', '/api/v1/api-keys', {
        token: alice.accessToken,
        body: { name: 'x', service_type: serviceType },
      });
      expectProblem(response, 400, 'validation', ['body.service_type']);
      const message = response.body.errors.find((e: { field: string }) => e.field === 'body.service_type').message as string;
      expect(message).toContain('compute');
      expect(message).toContain('seal');
    }
  });

  it('rejects a malformed service_type with 400 naming body.service_type', async () => {
    const response = await request('POST', '/api/v1/api-keys', { token: alice.accessToken, body: { name: 'x', service_type: 'Compute!' } });
    expectProblem(response, 400, 'validation', ['body.service_type']);
  });

  it('rejects a missing name and an unknown field with 400 naming both', async () => {
    const response = await request('POST', '/api/v1/api-keys', {
      token: alice.accessToken,
      body: { service_type: 'compute', scopes: ['all'] },
    });
    expectProblem(response, 400, 'validation', ['body.name', 'body.scopes']);
  });

  it('rejects a request without credentials with 401', async () => {
    expectProblem(await request('POST', '/api/v1/api-keys', { body: { name: 'x', service_type: 'compute' } }), 401, 'unauthorized');
  });

  it('does not let an API key manage API keys (403)', async () => {
    const { key } = await createKey(alice);
    expectProblem(
      await request('POST', '/api/v1/api-keys', { token: key, body: { name: 'child', service_type: 'compute' } }),
      403,
      'forbidden',
    );
    expectProblem(await request('GET', '/api/v1/api-keys', { token: key }), 403, 'forbidden');
  });
});

describe('GET /api-keys', () => {
  it("lists the customer's keys with their prefix, never the key, its hash or its ciphertext", async () => {
    const created = await createKey(bob, { name: 'listed' });
    const response = await request('GET', '/api/v1/api-keys', { token: bob.accessToken });
    expect(response.status).toBe(200);
    const listed = response.body.items.find((item: { id: string }) => item.id === created.id);
    expect(listed).toEqual({
      id: created.id,
      name: 'listed',
      service_type: 'compute',
      prefix: created.key.slice(0, 12),
      expires_at: null,
      revoked_at: null,
      created_at: created.created_at,
    });
    expect(response.text).not.toContain(created.key);
    expect(response.text).not.toMatch(/key_hash|encrypted|"key"/);
  });

  it("shows only the caller's own keys", async () => {
    const alices = await createKey(alice, { name: 'alice-only' });
    const response = await request('GET', '/api/v1/api-keys?limit=100', { token: bob.accessToken });
    expect(response.body.items.map((item: { id: string }) => item.id)).not.toContain(alices.id);
  });

  it('pages newest first with limit and next_cursor', async () => {
    const carol = await registerUser(request);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createKey(carol, { name: `k${i}` })).id);
    const first = await request('GET', '/api/v1/api-keys?limit=2', { token: carol.accessToken });
    expect(first.body.items.map((item: { id: string }) => item.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await request('GET', `/api/v1/api-keys?limit=2&cursor=${first.body.next_cursor}`, { token: carol.accessToken });
    expect(second.body).toEqual({ items: [expect.objectContaining({ id: ids[0] })], next_cursor: null });
  });

  it('rejects limit=0 with 400 naming query.limit and a forged cursor with 400 naming query.cursor', async () => {
    expectProblem(await request('GET', '/api/v1/api-keys?limit=0', { token: alice.accessToken }), 400, 'validation', ['query.limit']);
    expectProblem(await request('GET', '/api/v1/api-keys?cursor=bm9wZQ', { token: alice.accessToken }), 400, 'validation', [
      'query.cursor',
    ]);
  });
});

describe('DELETE /api-keys/:id', () => {
  it('revokes the key: 204, the key answers 401 at once, and the list shows revoked_at', async () => {
    const { id, key } = await createKey(alice);
    expect((await listJobs(key)).status).toBe(200); // now cached by the principal cache
    const response = await request('DELETE', `/api/v1/api-keys/${id}`, { token: alice.accessToken });
    expect(response.status).toBe(204);
    expectProblem(await listJobs(key), 401, 'unauthorized');
    const listed = await request('GET', '/api/v1/api-keys?limit=100', { token: alice.accessToken });
    expect(listed.body.items.find((item: { id: string }) => item.id === id).revoked_at).toEqual(expect.any(String));
  });

  it('answers 204 again for a key already revoked', async () => {
    const { id } = await createKey(alice);
    expect((await request('DELETE', `/api/v1/api-keys/${id}`, { token: alice.accessToken })).status).toBe(204);
    expect((await request('DELETE', `/api/v1/api-keys/${id}`, { token: alice.accessToken })).status).toBe(204);
  });

  it("answers 404 for another customer's key, which keeps working", async () => {
    const { id, key } = await createKey(bob);
    expectProblem(await request('DELETE', `/api/v1/api-keys/${id}`, { token: alice.accessToken }), 404, 'not-found');
    expect((await listJobs(key)).status).toBe(200);
  });

  it('answers 404 for an unknown id and 400 for an id that is not a UUID', async () => {
    expectProblem(
      await request('DELETE', '/api/v1/api-keys/01890000-0000-7000-8000-000000000000', { token: alice.accessToken }),
      404,
      'not-found',
    );
    expectProblem(await request('DELETE', '/api/v1/api-keys/not-a-uuid', { token: alice.accessToken }), 400, 'validation', ['params.id']);
  });
});

describe('POST /api-keys/:id/rotate', () => {
  it('answers 201 with a new id and a working key, keeps name and service type, and the old key answers 401', async () => {
    const old = await createKey(alice, { name: 'rotating', expires_at: inOneHour() });
    expect((await listJobs(old.key)).status).toBe(200);
    const response = await request('POST', `/api/v1/api-keys/${old.id}/rotate`, { token: alice.accessToken });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ name: 'rotating', service_type: 'compute', expires_at: old.expires_at, rotated_from: old.id });
    expect(response.body.id).not.toBe(old.id);
    expect(response.body.key).not.toBe(old.key);
    expect(response.body.prefix).toBe(response.body.key.slice(0, 12));
    expect((await listJobs(response.body.key)).status).toBe(200);
    expectProblem(await listJobs(old.key), 401, 'unauthorized');
  });

  it('takes a new expires_at, and refuses one in the past with 422', async () => {
    const old = await createKey(alice);
    expectProblem(
      await request('POST', `/api/v1/api-keys/${old.id}/rotate`, {
        token: alice.accessToken,
        body: { expires_at: '2000-01-01T00:00:00Z' },
      }),
      422,
      'unprocessable',
      ['body.expires_at'],
    );
    expect((await listJobs(old.key)).status).toBe(200);
    const expiresAt = inOneHour();
    const rotated = await request('POST', `/api/v1/api-keys/${old.id}/rotate`, {
      token: alice.accessToken,
      body: { expires_at: expiresAt },
    });
    expect(rotated.body.expires_at).toBe(expiresAt);
  });

  it('answers 409 for a revoked key', async () => {
    const { id } = await createKey(alice);
    await request('DELETE', `/api/v1/api-keys/${id}`, { token: alice.accessToken });
    expectProblem(await request('POST', `/api/v1/api-keys/${id}/rotate`, { token: alice.accessToken }), 409, 'conflict');
  });

  it("answers 404 for another customer's key, which keeps working", async () => {
    const { id, key } = await createKey(bob);
    expectProblem(await request('POST', `/api/v1/api-keys/${id}/rotate`, { token: alice.accessToken }), 404, 'not-found');
    expect((await listJobs(key)).status).toBe(200);
  });

  it('answers 404 for an unknown id', async () => {
    expectProblem(
      await request('POST', '/api/v1/api-keys/01890000-0000-7000-8000-000000000000/rotate', { token: alice.accessToken }),
      404,
      'not-found',
    );
  });
});

describe('API keys as credentials', () => {
  it('stop working once their expires_at has passed', async () => {
    const { id, key } = await createKey(alice, { expires_at: inOneHour() });
    expect((await listJobs(key)).status).toBe(200);
    await app.sql(`update api_keys set expires_at = now() - interval '1 second' where id = $1`, [id]);
    await app.deps.principals.invalidateCustomer(jwtClaims(alice.accessToken).cid as string);
    expectProblem(await listJobs(key), 401, 'unauthorized');
  });

  it('stop working at their expiry instant, though the principal cache still holds them', async () => {
    // Seconds ahead, so the first call (which caches the principal for 30 s) comes before the expiry.
    const expiresAt = new Date(Date.now() + 3000);
    const { key } = await createKey(alice, { expires_at: expiresAt.toISOString() });
    expect((await listJobs(key)).status).toBe(200);
    await waitFor(async () => Date.now() > expiresAt.getTime());
    expectProblem(await listJobs(key), 401, 'unauthorized');
  });

  it('get a customer view from GET /auth/me, with no user', async () => {
    const { id, key } = await createKey(alice, { service_type: 'compute' });
    const response = await request('GET', '/api/v1/auth/me', { token: key });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: null,
      email: null,
      role: 'user',
      customer_id: jwtClaims(alice.accessToken).cid,
      api_key_id: id,
      service_type: 'compute',
      tos_version_accepted: null,
      tos_current: null,
    });
  });

  it('are refused with 401 when they look like a key but were never issued', async () => {
    expectProblem(await listJobs(`sk_live_${'A'.repeat(43)}`), 401, 'unauthorized');
  });

  it('are refused again when the refusal is answered from the principal cache', async () => {
    const unknown = `sk_live_${'B'.repeat(43)}`;
    expectProblem(await listJobs(unknown), 401, 'unauthorized');
    expectProblem(await listJobs(unknown), 401, 'unauthorized');
  });
});
