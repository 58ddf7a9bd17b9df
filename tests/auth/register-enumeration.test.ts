import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type * as Passwords from '../../api/auth/passwords.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem } from './expect-problem.js';

/** Counts bcrypt hashes: the time a registration takes is almost all its hash. */
const hashes = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../api/auth/passwords.js', async (importOriginal) => {
  const actual = await importOriginal<typeof Passwords>();
  return {
    ...actual,
    hashPassword: (password: string) => {
      hashes.count += 1;
      return actual.hashPassword(password);
    },
  };
});

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

/** The bcrypt hashes `call` spent. */
async function hashesDuring(call: () => Promise<unknown>): Promise<number> {
  const before = hashes.count;
  await call();
  return hashes.count - before;
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
