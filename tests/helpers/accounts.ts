import { randomBytes } from 'node:crypto';
import type { httpClient } from './http.js';

type Request = ReturnType<typeof httpClient>;

export interface TestUser {
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

/** Registers a fresh user (accepting the current TOS) and logs in. */
export async function registerUser(
  request: Request,
  tosVersion = '1.0.0',
  email = `user-${randomBytes(6).toString('hex')}@example.test`,
): Promise<TestUser> {
  const password = 'correct horse battery';
  const registered = await request('POST', '/api/v1/auth/register', {
    body: { email, password, accept_tos: true, tos_version: tosVersion },
  });
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status} ${registered.text}`);
  return { email, password, ...(await login(request, email, password)) };
}

export async function login(request: Request, email: string, password: string): Promise<{ accessToken: string; refreshToken: string }> {
  const response = await request('POST', '/api/v1/auth/login', { body: { email, password } });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${response.text}`);
  return { accessToken: response.body.access_token, refreshToken: response.body.refresh_token };
}

/** The bootstrap admin of startTestApp (admin@example.test / admin-password-123). */
export async function loginAdmin(request: Request): Promise<string> {
  return (await login(request, 'admin@example.test', 'admin-password-123')).accessToken;
}
