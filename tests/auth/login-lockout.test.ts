import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem } from './expect-problem.js';

/**
 * The per-account lockout against a stranger: another customer who knows an account's email must not be able to
 * lock its owner out (issue: many tenants under hostile load), while guessers, one address or many, are stopped.
 * TRUST_PROXY=1 lets each request name its address in X-Forwarded-For.
 */
let app: TestApp;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  app = await startTestApp({ TRUST_PROXY: '1' });
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

const password = 'the owner password';
async function newAccount(): Promise<string> {
  const email = `owner-${Math.random().toString(36).slice(2, 10)}@example.test`;
  const registered = await request('POST', '/api/v1/auth/register', { body: { email, password, accept_tos: true, tos_version: '1.0.0' } });
  expect(registered.status).toBe(201);
  return email;
}
const loginFrom = (address: string, email: string, guess: string) =>
  request('POST', '/api/v1/auth/login', { body: { email, password: guess }, headers: { 'x-forwarded-for': address } });

// Each login is a bcrypt comparison: slow on a busy machine, hence the timeouts.
describe('failed logins', { timeout: 120_000 }, () => {
  it('stop guessers spread over addresses, but not the owner where it signed in before', async () => {
    const email = await newAccount();
    expect((await loginFrom('203.0.113.7', email, password)).status).toBe(200);
    for (let n = 1; n <= 10; n++) {
      const answer = await loginFrom(`198.51.100.${n}`, email, `guess ${n}`);
      expect(answer.status, `${n}: ${answer.text}`).toBe(401);
    }
    // From an address the account never signed in from: locked, even with the right password.
    expectProblem(await loginFrom('198.51.100.11', email, password), 429, 'rate-limited');
    // From the owner's own: in.
    expect((await loginFrom('203.0.113.7', email, password)).status).toBe(200);
  });

  it('stop a guesser at an address the account knows, after its own count', async () => {
    const email = await newAccount();
    expect((await loginFrom('203.0.113.8', email, password)).status).toBe(200);
    for (let n = 1; n <= 10; n++) expect((await loginFrom('203.0.113.8', email, `guess ${n}`)).status).toBe(401);
    const refused = await loginFrom('203.0.113.8', email, password);
    expectProblem(refused, 429, 'rate-limited');
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    // Another address of the owner's is its own count.
    expect((await loginFrom('203.0.113.9', email, password)).status).toBe(200);
  });
});
