import { Router } from 'express';
import { bearerMatches } from '../../lib/metrics/exposition.js';
import { renderMetricsWithSnapshots } from '../../lib/metrics/snapshots.js';
import type { ApiDeps } from '../deps.js';
import { ProblemError } from '../problems.js';

/**
 * `GET /metrics`: Prometheus text for this API process and every worker process's latest snapshot (labelled
 * `process`), behind `Authorization: Bearer $METRICS_TOKEN`.
 */
export function metricsRoutes(deps: ApiDeps): Router {
  const router = Router();

  router.get('/metrics', async (req, res) => {
    if (!bearerMatches(req.headers.authorization, deps.config.metricsToken)) {
      throw new ProblemError('unauthorized', 'the metrics endpoint needs Authorization: Bearer <METRICS_TOKEN>', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    // The workers' series too (lib/metrics/snapshots.ts), each labelled with its process.
    const publishMs = deps.config.workerMetricsPublishMs;
    const shared = publishMs > 0 ? { redis: deps.redis, prefix: deps.config.queuePrefix, maxAgeMs: 3 * publishMs } : undefined;
    const { contentType, body } = await renderMetricsWithSnapshots(shared);
    res.setHeader('Cache-Control', 'no-store');
    res.type(contentType).send(body);
  });

  return router;
}
