import type { Queue } from 'bullmq';
import express, { Router, type Response } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { z } from 'zod';
import { findUserByEmail } from '../../db/repositories/accounts.js';
import { FailedLoginThrottle } from '../auth/login-throttle.js';
import { verifyPassword } from '../auth/passwords.js';
import type { ApiDeps } from '../deps.js';
import { AdminSessions, requireAdminSession, sameOriginOnly } from './admin-session.js';
import { bullBoardApp } from './bull-board.js';
import { adminPageCsp, renderLoginPage, renderLogoutPage, type LoginPageOptions } from './login-page.js';
import { clientAddress } from '../rate-limits.js';

export interface AdminPagesOptions {
  /** Every queue Bull Board shows: the job-type queues and any internal ones. */
  queues: Iterable<Queue>;
  /** Admin session lifetime in seconds. Default 8 hours. */
  sessionTtlSeconds?: number;
  /** Login attempts per IP per minute before 429. Default 10 (as POST /auth/login). */
  loginAttemptsPerMinute?: number;
}

const loginForm = z.strictObject({
  // No NUL: PostgreSQL cannot compare text holding one, and the lookup would fail with a 500.
  email: z
    .string()
    .trim()
    .min(1)
    .max(254)
    .refine((email) => !email.includes('\u0000'))
    .transform((email) => email.toLowerCase()),
  password: z.string().min(1).max(1024),
});

const invalidLogin = 'Wrong email or password, or the account is not an administrator.';

function sendPage(res: Response, status: number, html: string): void {
  res
    .status(status)
    .setHeader('Content-Security-Policy', adminPageCsp)
    // Browsers then send this origin in `Origin` on the form posts (no-referrer would make it `null`).
    .setHeader('Referrer-Policy', 'same-origin')
    .setHeader('Cache-Control', 'no-store')
    .type('html')
    .send(html);
}

/**
 * The operator pages outside /api/v1: `GET|POST /admin/login`, `GET|POST /admin/logout` and Bull Board
 * at `/admin/queues`, which only a live admin session reaches. CSRF: the session cookie is
 * SameSite=Strict and every state-changing request must come from this host (`sameOriginOnly`).
 */
export function adminPagesRoutes(deps: ApiDeps, options: AdminPagesOptions): Router {
  const router = Router();
  const sessions = new AdminSessions(deps.redis, deps.config.queuePrefix, {
    ttlSeconds: options.sessionTtlSeconds,
    secureCookie: deps.config.nodeEnv === 'production',
  });
  const loginLimiter = new RateLimiterRedis({
    storeClient: deps.redis,
    keyPrefix: `${deps.config.queuePrefix}:rl:admin-login`,
    points: options.loginAttemptsPerMinute ?? 10,
    duration: 60,
  });
  // Shared with POST /auth/login: the same account's failures count together.
  const failedLogins = new FailedLoginThrottle(deps.redis, deps.config.queuePrefix);
  const loginPage = (res: Response, status: number, page: LoginPageOptions = {}) => sendPage(res, status, renderLoginPage(page));

  router.use('/admin', sameOriginOnly);
  router.get('/admin', (_req, res) => res.redirect(303, '/admin/queues'));

  router.get('/admin/login', async (req, res) => {
    if (await sessions.current(req)) return res.redirect(303, '/admin/queues');
    loginPage(res, 200);
  });

  router.post('/admin/login', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    try {
      await loginLimiter.consume(req.ip ?? 'unknown');
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      res.setHeader('Retry-After', String(Math.ceil(error.msBeforeNext / 1000)));
      return loginPage(res, 429, { error: 'Too many attempts; wait a minute and try again.' });
    }
    const form = loginForm.safeParse(req.body ?? {});
    if (!form.success) return loginPage(res, 400, { error: 'Enter an email and a password.' });
    const { email, password } = form.data;
    const retryAfter = await failedLogins.attempt(email, clientAddress(req));
    if (retryAfter > 0) {
      res.setHeader('Retry-After', String(retryAfter));
      return loginPage(res, 429, {
        error: `Too many failed attempts for this account; try again in ${Math.ceil(retryAfter / 60)} min.`,
        email,
      });
    }
    const user = await findUserByEmail(deps.orm.em.fork(), email);
    // verifyPassword always runs one bcrypt comparison, so unknown emails take as long as known ones.
    const passwordMatches = await verifyPassword(password, user?.passwordHash);
    // The right password is no failure, even for an account that is not an administrator.
    if (user && passwordMatches) await failedLogins.succeeded(email, clientAddress(req));
    if (!user || !passwordMatches || user.role !== 'admin') return loginPage(res, 401, { error: invalidLogin, email });
    await sessions.start(req, res, { userId: user.id, email: user.email });
    (req.log ?? deps.logger).info({ userId: user.id }, 'admin logged in to the queue dashboard');
    res.redirect(303, '/admin/queues');
  });

  router.get('/admin/logout', async (req, res) => {
    const session = await sessions.current(req);
    if (!session) return res.redirect(303, '/admin/login');
    sendPage(res, 200, renderLogoutPage(session.email));
  });

  router.post('/admin/logout', async (req, res) => {
    await sessions.end(req, res);
    res.redirect(303, '/admin/login');
  });

  router.use('/admin/queues', requireAdminSession(sessions), bullBoardApp(options.queues));
  return router;
}
