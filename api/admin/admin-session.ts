import type { CookieOptions, Request, RequestHandler, Response } from 'express';
import type { RedisClient } from '../../lib/redis.js';
import { createHash, randomBytes } from 'node:crypto';
import { ProblemError } from '../problems.js';

/** The cookie only travels to /admin, never to the JSON API. */
export const adminCookieName = 'chrysalis_admin';
export const adminCookiePath = '/admin';

export interface AdminSession {
  userId: string;
  email: string;
}

export interface AdminSessionsOptions {
  /** Session lifetime in seconds, from login (not sliding). Default 8 hours. */
  ttlSeconds?: number;
  /** Adds `Secure` to the cookie (production). Default false. */
  secureCookie?: boolean;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const sessionIdPattern = /^[A-Za-z0-9_-]{43}$/;

/**
 * Bull Board sessions: a random opaque id in an httpOnly cookie; Redis maps it (hashed, so a leaked
 * Redis dump holds no usable cookie) to the admin it was issued to, with a TTL. Checking a request
 * costs one Redis GET and no database read; the admin role is verified once, at login, so a demoted
 * admin keeps access until the session expires or is logged out.
 */
export class AdminSessions {
  readonly ttlSeconds: number;
  private readonly secureCookie: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: AdminSessionsOptions = {},
  ) {
    this.ttlSeconds = options.ttlSeconds ?? 8 * 3600;
    this.secureCookie = options.secureCookie ?? false;
  }

  private key(sessionId: string): string {
    return `${this.prefix}:admin-session:${sha256(sessionId)}`;
  }

  /** Stores a new session and sets its cookie on `res`. Call only after verifying the user is an admin. */
  async start(res: Response, session: AdminSession): Promise<void> {
    const sessionId = randomBytes(32).toString('base64url');
    await this.redis.set(this.key(sessionId), JSON.stringify(session), 'EX', this.ttlSeconds);
    res.cookie(adminCookieName, sessionId, { ...this.cookieOptions(), maxAge: this.ttlSeconds * 1000 });
  }

  /** The session named by the request's cookie, or null (no cookie, malformed, expired or logged out). */
  async current(req: Request): Promise<AdminSession | null> {
    const sessionId = readCookie(req, adminCookieName);
    if (!sessionId || !sessionIdPattern.test(sessionId)) return null;
    const stored = await this.redis.get(this.key(sessionId));
    return stored ? (JSON.parse(stored) as AdminSession) : null;
  }

  /** Deletes the request's session (if any) and clears the cookie. */
  async end(req: Request, res: Response): Promise<void> {
    const sessionId = readCookie(req, adminCookieName);
    if (sessionId && sessionIdPattern.test(sessionId)) await this.redis.del(this.key(sessionId));
    res.clearCookie(adminCookieName, this.cookieOptions());
  }

  private cookieOptions(): CookieOptions {
    return { httpOnly: true, sameSite: 'strict', secure: this.secureCookie, path: adminCookiePath };
  }
}

/** One cookie from the Cookie header (no cookie-parser dependency for a single value). */
export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) {
      try {
        return decodeURIComponent(part.slice(index + 1).trim());
      } catch {
        return undefined; // a malformed escape (`%E0%A4%A`) is no session, not a 500
      }
    }
  }
  return undefined;
}

/**
 * Lets a request through only with a live admin session. Pages answer a 303 to the login form; Bull
 * Board's own JSON calls (`…/api/…`) and other methods answer a 401 problem, which the UI shows.
 */
export function requireAdminSession(sessions: AdminSessions, loginPath = '/admin/login'): RequestHandler {
  return async (req, res, next) => {
    if (await sessions.current(req)) return next();
    if ((req.method === 'GET' || req.method === 'HEAD') && !req.path.startsWith('/api/')) return res.redirect(303, loginPath);
    throw new ProblemError('unauthorized', 'log in at /admin/login first');
  };
}

/**
 * CSRF defence for the admin pages, on top of the SameSite=Strict cookie: a state-changing request
 * (login, logout, Bull Board's retry/clean/remove calls) must come from a page of this origin.
 * `Sec-Fetch-Site` decides when the browser sends it (all current ones do); otherwise `Origin` must be
 * this origin — scheme, host and port, since `http://host` and `https://host` are different origins and a
 * page served over plain HTTP (or another port) must not post to the TLS one. `Origin: null` (what a
 * browser sends under `Referrer-Policy: no-referrer`) proves nothing and is refused unless
 * `Sec-Fetch-Site` vouches for the request. A request with neither header is not from a browser, so it
 * cannot ride an admin's cookie. Behind a TLS-terminating proxy set `TRUST_PROXY`: `req.protocol` and
 * `req.host` then follow `X-Forwarded-Proto` and `X-Forwarded-Host`.
 */
export const sameOriginOnly: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
  const fetchSite = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (fetchSite !== undefined) {
    if (fetchSite !== 'same-origin' && fetchSite !== 'none') throw new ProblemError('forbidden', 'cross-site request refused');
  } else if (origin !== undefined) {
    const claimed = normalOrigin(origin);
    if (claimed === null || claimed !== normalOrigin(`${req.protocol}://${req.host}`))
      throw new ProblemError('forbidden', 'cross-origin request refused');
  }
  next();
};

/** `scheme://host[:port]` as URL serialises it (default ports dropped, host lowercased); null for `null` or junk. */
function normalOrigin(origin: string): string | null {
  if (origin === 'null') return null;
  try {
    const { origin: serialized } = new URL(origin);
    return serialized === 'null' ? null : serialized;
  } catch {
    return null;
  }
}
