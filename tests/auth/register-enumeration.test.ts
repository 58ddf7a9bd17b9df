import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

const registration = (email: string) => ({ email, password: 'long enough password', accept_tos: true, tos_version: '1.0.0' });

/** The API's bcrypt pool's finished tasks, as /metrics reports them (`chrysalis_pool_tasks_completed{pool="passwords"}`). */
async function bcryptTasksDone(): Promise<number> {
  const metrics = await request('GET', '/api/v1/metrics', { token: app.config.metricsToken });
  const line = /^chrysalis_pool_tasks_completed\{pool="passwords"\} (\d+)$/m.exec(metrics.text);
  if (!line) throw new Error('no passwords pool in /metrics');
  return Number(line[1]);
}

/** The bcrypt tasks (hashes; a registration compares nothing) `call` spent. */
async function hashesDuring(call: () => Promise<unknown>): Promise<number> {
  const before = await bcryptTasksDone();
  await call();
  return (await bcryptTasksDone()) - before;
}

describe('POST /auth/register and account enumeration', () => {
  it('spends the same bcrypt hash on an email already taken as on a new one, so timing does not tell them apart', async () => {
    const email = `taken-${Date.now()}@example.test`;
    const fresh = await hashesDuring(async () =>
      expect((await request('POST', '/api/v1/auth/register', { body: registration(email) })).status).toBe(201),
    );
    expect(fresh).toBe(1);
    const taken = await hashesDuring(async () =>
      expectProblem(await request('POST', '/api/v1/auth/register', { body: registration(email.toUpperCase()) }), 409, 'conflict'),
    );
    expect(taken).toBe(fresh);
  });
});
