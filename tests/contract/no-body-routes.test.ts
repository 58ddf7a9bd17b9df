import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, type TestUser } from '../helpers/accounts.js';
import type { HttpResponse, RequestOptions } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * Routes that take no body refuse one with fields as every other route refuses an unknown field (SPEC §5:
 * 400 naming `body.<field>`), before they change anything; no body and `{}` are still taken.
 */
const suite = useTestApp({ users: 2 });
let token: string;
let adminToken: string;
let substrateId: string;

const call = (method: string, path: string, options: RequestOptions = {}) => suite.request(method, `/api/v1${path}`, { token, ...options });
const bogus = { body: { bogus: 1 } };

/** One route that takes no body, and how to call it on a resource of its own. */
interface NoBodyRoute {
  method: string;
  /** Makes the resource the route acts on; returns its path. */
  prepare: () => Promise<string>;
  /** Asserts the refused call left the resource as it was. */
  unchanged: (path: string) => Promise<void>;
  /** The status of the call without a body. */
  accepted: number;
  /** Another caller (the admin routes). */
  options?: () => RequestOptions;
}

async function createSchedule(paused = false): Promise<string> {
  const name = `nb-${randomUUID().slice(0, 8)}`;
  const created = await call('POST', '/schedules', {
    body: { name, cron: '0 0 1 1 *', job: { type: 'invoke', payload: { substrate_id: substrateId } } },
  });
  expect(created.status, created.text).toBe(201);
  if (paused) expect((await call('POST', `/schedules/${name}/pause`)).status).toBe(200);
  return `/schedules/${name}`;
}

async function createWebhook(): Promise<string> {
  const created = await call('POST', '/webhooks', { body: { url: 'http://127.0.0.1:9/hook', events: ['job.completed'] } });
  expect(created.status, created.text).toBe(201);
  return `/webhooks/${created.body.id}`;
}

/** A job that waits an hour before it runs: cancelled it is retryable, left alone it stays delayed. */
async function delayedJob(): Promise<string> {
  const submitted = await call('POST', '/jobs', { body: { type: 'invoke', payload: { substrate_id: substrateId }, delay_ms: 3_600_000 } });
  expect(submitted.status, submitted.text).toBe(202);
  return `/jobs/${submitted.body.id}`;
}

const stillThere = async (path: string) => expect((await call('GET', path)).status).toBe(200);
const scheduleOf = async (path: string) => (await call('GET', path)).body as { paused: boolean };
const otherCustomerId = async () => (await call('GET', '/auth/me', { token: (suite.users[1] as TestUser).accessToken })).body.customer_id;

const routes: Record<string, NoBodyRoute> = {
  'POST /schedules/:name/pause': {
    method: 'POST',
    prepare: async () => `${await createSchedule()}/pause`,
    unchanged: async (path) => expect((await scheduleOf(path.replace(/\/pause$/, ''))).paused).toBe(false),
    accepted: 200,
  },
  'POST /schedules/:name/resume': {
    method: 'POST',
    prepare: async () => `${await createSchedule(true)}/resume`,
    unchanged: async (path) => expect((await scheduleOf(path.replace(/\/resume$/, ''))).paused).toBe(true),
    accepted: 200,
  },
  'DELETE /schedules/:name': { method: 'DELETE', prepare: () => createSchedule(), unchanged: stillThere, accepted: 204 },
  'DELETE /webhooks/:id': { method: 'DELETE', prepare: createWebhook, unchanged: stillThere, accepted: 204 },
  'POST /webhooks/:id/enable': {
    method: 'POST',
    prepare: async () => `${await createWebhook()}/enable`,
    unchanged: async () => {},
    accepted: 200,
  },
  'POST /webhooks/:id/deliveries/:delivery_id/redeliver': {
    method: 'POST',
    // No delivery: accepted, the call goes on to its lookup (404); refused, it never gets there.
    prepare: async () => `${await createWebhook()}/deliveries/${randomUUID()}/redeliver`,
    unchanged: async () => {},
    accepted: 404,
  },
  'POST /jobs/:id/retry': {
    method: 'POST',
    prepare: async () => {
      const job = await delayedJob();
      expect((await call('DELETE', job)).status).toBe(200);
      return `${job}/retry`;
    },
    unchanged: async (path) => {
      const original = (await call('GET', path.replace(/\/retry$/, ''))).body.id as string;
      const retries = await suite.app.sql<{ n: string }>(`select count(*) as n from jobs where retry_of = $1`, [original]);
      expect(retries[0]?.n).toBe('0');
    },
    accepted: 202,
  },
  'DELETE /jobs/:id': {
    method: 'DELETE',
    prepare: delayedJob,
    unchanged: async (path) => expect((await call('GET', path)).body.state).toBe('delayed'),
    accepted: 200,
  },
  'DELETE /api-keys/:id': {
    method: 'DELETE',
    prepare: async () => {
      const created = await call('POST', '/api-keys', { body: { name: 'no-body', service_type: 'compute' } });
      expect(created.status, created.text).toBe(201);
      return `/api-keys/${created.body.id}`;
    },
    unchanged: async (path) => {
      const keys = (await call('GET', '/api-keys')).body.items as Array<{ id: string; revoked_at: string | null }>;
      expect(keys.find((key) => path.endsWith(key.id))?.revoked_at).toBeNull();
    },
    accepted: 204,
  },
  'DELETE /substrates/:id': {
    method: 'DELETE',
    prepare: async () => `/substrates/${await createExpressionSubstrate(suite.request, token, `x + ${Math.random()}`)}`,
    unchanged: stillThere,
    accepted: 204,
  },
  'DELETE /relationships/:id': {
    method: 'DELETE',
    prepare: async () => {
      const target = await createExpressionSubstrate(suite.request, token, `y + ${Math.random()}`);
      const created = await call('POST', '/relationships', { body: { source_id: substrateId, target_id: target, type: 'REFERENCE' } });
      expect(created.status, created.text).toBe(201);
      return `/relationships/${created.body.id}`;
    },
    unchanged: stillThere,
    accepted: 204,
  },
  'POST /substrates/:id/divide': {
    method: 'POST',
    prepare: async () => `/substrates/${substrateId}/divide`,
    unchanged: async () => {},
    accepted: 202,
  },
  'POST /admin/customers/:id/pause': {
    method: 'POST',
    prepare: async () => `/admin/customers/${await otherCustomerId()}/pause`,
    unchanged: async (path) => {
      const [row] = await suite.app.sql<{ paused_at: Date | null }>(`select paused_at from customers where id = $1`, [path.split('/')[3]]);
      expect(row?.paused_at).toBeNull();
    },
    accepted: 200,
    options: () => ({ token: adminToken }),
  },
  'POST /admin/customers/:id/resume': {
    method: 'POST',
    prepare: async () => `/admin/customers/${await otherCustomerId()}/resume`,
    unchanged: async () => {},
    accepted: 200,
    options: () => ({ token: adminToken }),
  },
  'DELETE /admin/customers/:id': {
    method: 'DELETE',
    // No such customer: accepted, the call goes on to its lookup (404); refused, it never gets there.
    prepare: async () => `/admin/customers/${randomUUID()}`,
    unchanged: async () => {},
    accepted: 404,
    options: () => ({ token: adminToken }),
  },
};

beforeAll(async () => {
  token = (suite.users[0] as TestUser).accessToken;
  adminToken = await loginAdmin(suite.request);
  substrateId = await createExpressionSubstrate(suite.request, token, 'x * y');
});

describe('routes that take no body', () => {
  it.each(Object.entries(routes))(
    '%s refuses {"bogus":1} with 400 body.bogus and changes nothing; no body and {} pass',
    async (_name, route) => {
      const options = route.options?.() ?? {};
      const path = await route.prepare();
      const refused = await call(route.method, path, { ...options, ...bogus });
      expectProblem(refused, 400, 'validation', ['body.bogus']);
      expect(refused.body.errors).toEqual([{ field: 'body.bogus', message: 'unknown field' }]);
      await route.unchanged(path);

      const accepted: HttpResponse = await call(route.method, path, options);
      expect(accepted.status, accepted.text).toBe(route.accepted);
      // An empty object is no body too (a route that acted once may answer its second call otherwise, but never 400).
      const empty = await call(route.method, path, { ...options, body: {} });
      expect(empty.status, empty.text).not.toBe(400);
      expect(empty.status, empty.text).toBeLessThan(500);
    },
  );

  it('POST /webhooks/secret with {"bogus":1} keeps the secret; without a body rotates it', async () => {
    const before = (await call('GET', '/webhooks/secret')).body.secret as string;
    expectProblem(await call('POST', '/webhooks/secret', bogus), 400, 'validation', ['body.bogus']);
    expect((await call('GET', '/webhooks/secret')).body.secret).toBe(before);
    const rotated = await call('POST', '/webhooks/secret');
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.secret).not.toBe(before);
    expect((await call('POST', '/webhooks/secret', { body: {} })).body.secret).not.toBe(rotated.body.secret);
  });

  it('DELETE /auth/session with {"bogus":1} keeps the console session; without a body ends it', async () => {
    const user = suite.users[0] as TestUser;
    const csrf = { 'x-chrysalis-csrf': '1' };
    const signedIn = await call('POST', '/auth/session', {
      token: undefined,
      body: { email: user.email, password: user.password },
      headers: csrf,
    });
    expect(signedIn.status, signedIn.text).toBe(201);
    const cookie = (signedIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const withSession = { token: undefined, headers: { ...csrf, cookie } };
    expectProblem(await call('DELETE', '/auth/session', { ...withSession, ...bogus }), 400, 'validation', ['body.bogus']);
    expect((await call('GET', '/auth/me', withSession)).status).toBe(200);
    expect((await call('DELETE', '/auth/session', withSession)).status).toBe(204);
    expect((await call('GET', '/auth/me', withSession)).status).toBe(401);
  });
});
