import { Router } from 'express';
import { bearerMatches, renderMetrics } from '../../lib/metrics/exposition.js';
import type { ApiDeps } from '../deps.js';
import { ProblemError } from '../problems.js';

/** `GET /metrics`: Prometheus text for this API process, behind `Authorization: Bearer $METRICS_TOKEN`. */
export function metricsRoutes(deps: ApiDeps): Router {
  const router = Router();

  router.get('/metrics', async (req, res) => {
    if (!bearerMatches(req.headers.authorization, deps.config.metricsToken)) {
      throw new ProblemError('unauthorized', 'the metrics endpoint needs Authorization: Bearer <METRICS_TOKEN>', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    const { contentType, body } = await renderMetrics();
    res.setHeader('Cache-Control', 'no-store');
    res.type(contentType).send(body);
  });

  return router;
}
