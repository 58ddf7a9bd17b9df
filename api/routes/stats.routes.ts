import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { createStats } from '../stats.js';
import { parseInput } from '../validate.js';

export const statsQuery = z.strictObject({});

/**
 * `GET /stats` (authenticated and rate-limited by `auth`): the caller's own figures, everybody's for admins.
 * See api/stats.ts for each figure.
 */
export function statsRoutes(deps: ApiDeps, auth: RequestHandler[]): Router {
  const router = Router();
  const stats = createStats(deps.orm.em);

  router.get('/stats', ...auth, async (req, res) => {
    const principal = principalOf(req);
    parseInput(statsQuery, req.query, 'query');
    res.setHeader('Cache-Control', 'no-store');
    res.json(await stats(principal.role === 'admin' ? null : principal.customerId));
  });

  return router;
}
