import type { EntityManager } from '@mikro-orm/postgresql';
import { findUserByEmail, type UserRow } from '../../db/repositories/accounts.js';
import { ProblemError } from '../problems.js';
import type { FailedLoginThrottle } from './login-throttle.js';
import { verifyPassword } from './passwords.js';

/**
 * The user whose email and password these are, for POST /auth/login and POST /auth/session alike:
 * 429 while the account's failed logins are used up (counted before the password is checked), 401 for
 * a wrong password or an unknown email — which still costs one bcrypt comparison in the password pool,
 * so timing does not reveal which accounts exist. A success clears the failures from its address and makes the
 * address known to the account (login-throttle.ts).
 */
export async function checkLogin(
  em: EntityManager,
  failedLogins: FailedLoginThrottle,
  email: string,
  password: string,
  /** The client's address (`req.ip`). */
  address: string,
): Promise<UserRow> {
  const retryAfter = await failedLogins.attempt(email, address);
  if (retryAfter > 0) {
    // The RateLimit headers describe this refusal's limit, not the per-address budget the request also spent.
    throw new ProblemError('rate-limited', `too many failed logins for this account; retry in ${retryAfter} s`, {
      headers: {
        'RateLimit-Limit': String(failedLogins.maxFailures),
        'RateLimit-Remaining': '0',
        'RateLimit-Reset': String(retryAfter),
        'Retry-After': String(retryAfter),
      },
    });
  }
  const user = await findUserByEmail(em, email);
  if (!(await verifyPassword(password, user?.passwordHash)) || !user) throw new ProblemError('unauthorized', 'invalid email or password');
  await failedLogins.succeeded(email, address);
  return user;
}
