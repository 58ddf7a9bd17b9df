import { loadConfig } from '../config.js';
import { runEntryPoint, stopOnSignals } from '../lib/entry-point.js';
import { createLogger } from '../lib/logger.js';
import { createOrm } from '../db/orm.js';
import { publishMetricSnapshots } from '../lib/metrics/snapshots.js';
import { createRedis } from '../lib/redis.js';
import { assertRedisNoEviction } from '../lib/redis-eviction-policy.js';
import { serveWorkerMetrics } from './metrics.js';
import { runWorkers } from './run-workers.js';

/** The worker process: `node dist/workers/main.js` (or `tsx workers/main.ts`). */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'worker');
  await assertRedisNoEviction(config.redis, logger);
  const orm = await createOrm(config.databaseUrl);
  const running = await runWorkers({ config, orm, logger });
  // WORKER_METRICS_PORT=0 runs no metrics server (several workers on one host, or tests).
  const metricsServer =
    config.workerMetricsPort > 0 ? await serveWorkerMetrics({ port: config.workerMetricsPort, token: config.metricsToken, logger }) : null;
  // And the API's /metrics shows this process's series too (WORKER_METRICS_PUBLISH_MS=0: it does not).
  const metricsRedis = config.workerMetricsPublishMs > 0 ? createRedis(config.redis, 'commands') : null;
  const stopPublishing = metricsRedis
    ? publishMetricSnapshots(metricsRedis, config.queuePrefix, config.workerMetricsPublishMs, logger)
    : async () => undefined;
  logger.info(
    { concurrency: config.workerConcurrency, threads: config.piscinaThreads, metricsPort: config.workerMetricsPort || null },
    'workers running',
  );

  // Jobs still held when the process is cut off return to their queues through stall detection.
  stopOnSignals(logger, 'worker', config.shutdownTimeoutMs, async () => {
    const report = await running.close(config.shutdownTimeoutMs);
    await stopPublishing();
    metricsRedis?.disconnect();
    await orm.close();
    metricsServer?.close();
    return { ...report };
  });
}

runEntryPoint(main);
