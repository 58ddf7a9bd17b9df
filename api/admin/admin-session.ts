import type { RequestHandler } from 'express';
import type { RedisClient } from '../../lib/redis.js';
import { CookieSessions } from '../auth/cookie-sessions.js';
import { crossOriginRefusal } from '../auth/same-origin.js';
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

/**
 * Bull Board sessions: a random opaque id in an httpOnly cookie scoped to /admin (see CookieSessions).
 * The admin role is verified once, at login, so a demoted admin keeps access until the session expires
 * or is logged out.
 */
export class AdminSessions extends CookieSessions<AdminSession> {
  constructor(redis: RedisClient, prefix: string, options: AdminSessionsOptions = {}) {
    super(redis, prefix, { ...options, cookieName: adminCookieName, cookiePath: adminCookiePath, kind: 'admin-session' });
  }
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
 * (login, logout, Bull Board's retry/clean/remove calls) must come from a page of this origin
 * (`crossOriginRefusal`). A request with neither `Sec-Fetch-Site` nor `Origin` is not from a browser,
 * so it cannot ride an admin's cookie.
 */
export const sameOriginOnly: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
  const refusal = crossOriginRefusal(req);
  if (refusal) throw new ProblemError('forbidden', refusal);
  next();
};
