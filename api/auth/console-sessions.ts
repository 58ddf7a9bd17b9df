import type { Request } from 'express';
import type { RedisClient } from '../../lib/redis.js';
import { ProblemError } from '../problems.js';
import { CookieSessions } from './cookie-sessions.js';
import { crossOriginRefusal } from './same-origin.js';

/** The console's cookie travels only to the JSON API (`/api/v1`), never to the pages or /admin. */
export const consoleCookieName = 'chrysalis_session';
export const consoleCookiePath = '/api/v1';
/**
 * The header a console page sends with every call. A cross-site form cannot send a header, and a
 * cross-origin script cannot send this one without a CORS preflight, which the API never grants.
 */
export const csrfHeader = 'X-Chrysalis-CSRF';

/** What a console session stands for: one user of one customer (the role is read per request, as for a JWT). */
export interface ConsoleSession {
  userId: string;
  customerId: string;
}

/**
 * The console's sign-in sessions (POST /api/v1/auth/session): an opaque id in an httpOnly,
 * SameSite=Strict cookie scoped to /api/v1, 8 hours from sign-in; the API accepts it in place of a
 * bearer token. No token ever reaches the page's JavaScript.
 */
export class ConsoleSessions extends CookieSessions<ConsoleSession> {
  constructor(redis: RedisClient, prefix: string, options: { ttlSeconds?: number; secureCookie?: boolean } = {}) {
    super(redis, prefix, { ...options, cookieName: consoleCookieName, cookiePath: consoleCookiePath, kind: 'console-session' });
  }
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF defence for a request a session cookie authenticates (and for signing in and out), on top of
 * SameSite=Strict: a state-changing request must carry `X-Chrysalis-CSRF` and must not say it comes
 * from another origin (`Sec-Fetch-Site`, `Origin`). Reads pass: they change nothing, and without CORS
 * another site cannot read their answers. Throws a 403 problem.
 */
export function assertNotCrossSite(req: Request): void {
  if (safeMethods.has(req.method)) return;
  if (!req.headers[csrfHeader.toLowerCase()])
    throw new ProblemError(
      'forbidden',
      `the console's requests (its sign-in, and any a session cookie authenticates) must send the ${csrfHeader} header`,
      {
        errors: [{ field: `header.${csrfHeader.toLowerCase()}`, message: 'required' }],
      },
    );
  const refusal = crossOriginRefusal(req);
  if (refusal) throw new ProblemError('forbidden', refusal);
}
