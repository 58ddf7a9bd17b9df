import { Router } from 'express';
import { checkLogin } from '../auth/check-login.js';
import { assertNotCrossSite, type ConsoleSessions } from '../auth/console-sessions.js';
import { FailedLoginThrottle } from '../auth/login-throttle.js';
import type { ApiDeps } from '../deps.js';
import { parseInput, refuseBodyFields } from '../validate.js';
import { loginBody } from './accounts.routes.js';
import { clientAddress } from '../rate-limits.js';

/**
 * The console's sign-in: `POST /auth/session` checks email and password exactly as POST /auth/login
 * does (the same per-IP limit, mounted in app.ts, and the same per-account failure count) and answers
 * with a session cookie instead of tokens; `DELETE /auth/session` ends the session in Redis. Both take
 * the CSRF header, so another site can neither sign a visitor in (into the attacker's account) nor out.
 */
export function consoleSessionRoutes(deps: ApiDeps, sessions: ConsoleSessions): Router {
  const router = Router();
  // Shared with POST /auth/login and POST /admin/login through Redis: one account, one count.
  const failedLogins = new FailedLoginThrottle(deps.redis, deps.config.queuePrefix);

  router.post('/auth/session', async (req, res) => {
    assertNotCrossSite(req);
    const body = parseInput(loginBody, req.body, 'body');
    const user = await checkLogin(deps.orm.em.fork(), failedLogins, body.email, body.password, clientAddress(req));
    await sessions.start(req, res, { userId: user.id, customerId: user.customerId });
    (req.log ?? deps.logger).info({ userId: user.id }, 'signed in to the console');
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json({
      id: user.id,
      email: user.email,
      customer_id: user.customerId,
      role: user.role,
      expires_at: new Date(Date.now() + sessions.ttlSeconds * 1000).toISOString(),
    });
  });

  router.delete('/auth/session', async (req, res) => {
    assertNotCrossSite(req);
    refuseBodyFields(req.body);
    await sessions.end(req, res);
    res.status(204).end();
  });

  return router;
}
