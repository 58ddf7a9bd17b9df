import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/suite.js';
import { expectProblem } from './expect-problem.js';

/**
 * bcrypt runs in the API's password pool (PASSWORD_HASH_THREADS), not on its event loop. A burst of logins
 * past the pool's queue (PASSWORD_HASH_MAX_QUEUE) is answered at once with 503 and Retry-After, never 500,
 * while the requests the pool took complete normally.
 */
const suite = useTestApp({ users: 1, env: { PASSWORD_HASH_THREADS: '1', PASSWORD_HASH_MAX_QUEUE: '1', PASSWORD_HASH_COST: '12' } });

describe('password hashing in a bounded pool', () => {
  it('logs in with the right password and refuses a wrong one with 401', async () => {
    const user = suite.users[0]!;
    expect((await suite.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: user.password } })).status).toBe(200);
    expectProblem(
      await suite.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: `${user.password}!` } }),
      401,
      'unauthorized',
    );
  });

  it('answers a burst of logins past the queue with 503 and Retry-After, never 500', { timeout: 90_000 }, async () => {
    const attempts = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        suite.request('POST', '/api/v1/auth/login', { body: { email: `burst-${n}@example.test`, password: 'wrong password' } }),
      ),
    );
    const statuses = attempts.map((response) => response.status);
    expect(statuses.every((status) => status === 401 || status === 503)).toBe(true);
    expect(statuses).toContain(401);
    const busy = attempts.find((response) => response.status === 503);
    expect(busy, 'one attempt past the queue').toBeDefined();
    expectProblem(busy!, 503, 'unavailable');
    expect(busy!.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
