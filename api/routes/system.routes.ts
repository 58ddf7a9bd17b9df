import { Router } from 'express';
import type { ApiDeps } from '../deps.js';
import { sharedReadings } from '../shared-readings.js';
import { checkWorkersConsuming } from '../worker-readiness.js';

const startedAt = Date.now();

async function check(
  name: string,
  probe: () => Promise<unknown>,
  timeoutMs = 2000,
): Promise<{ name: string; ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return { name, ok: true };
  } catch (error) {
    return { name, ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

async function workersConsuming(deps: ApiDeps): Promise<void> {
  const readiness = await checkWorkersConsuming(deps.redis, deps.queues, deps.config.queuePrefix);
  if (!readiness.ok) throw new Error(readiness.error);
}

/**
 * How long one readiness answer serves every probe of this process, in ms (one check at a time: `sharedReadings`).
 * /ready needs no credentials, and each check reads PostgreSQL and Redis: a flood of probes (~560 a second from one
 * client) ran ~460 database transactions a second. A load balancer's probe every few seconds still sees a fresh answer.
 */
export const readinessReuseMs = 1000;

/** Liveness and readiness (PostgreSQL, Redis and, unless READY_REQUIRES_WORKER=false, consuming workers); no authentication. */
export function systemRoutes(deps: ApiDeps): Router {
  const router = Router();

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok', uptime_seconds: Math.round((Date.now() - startedAt) / 1000) });
  });

  const readiness = sharedReadings(
    () =>
      Promise.all([
        check('postgres', () => deps.orm.em.getConnection().execute('select 1')),
        check('redis', () => deps.redis.ping()),
        ...(deps.config.readyRequiresWorker ? [check('workers', () => workersConsuming(deps))] : []),
      ]),
    readinessReuseMs,
    1,
  );
  router.get('/ready', async (_req, res) => {
    const checks = await readiness('ready');
    const ready = checks.every((c) => c.ok);
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(checks.map(({ name, ...rest }) => [name, rest])) });
  });

  return router;
}
