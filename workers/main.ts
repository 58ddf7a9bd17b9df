import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../api/logger.js';
import { createOrm } from '../db/orm.js';
import { assertRedisNoEviction } from '../db/redis-eviction-policy.js';
import { serveWorkerMetrics } from './metrics.js';
import { runWorkers } from './run-workers.js';

/** SIGTERM to exit: the shutdown deadline for active jobs plus a few seconds to flush and close, inside 30 s. */
const hardStopMs = 29_000;

/** The worker process: `node dist/workers/main.js` (or `tsx workers/main.ts`). */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'worker');
  await assertRedisNoEviction(config.redisUrl, logger);
  const orm = await createOrm(config.databaseUrl);
  const running = await runWorkers({ config, orm, logger });
  // WORKER_METRICS_PORT=0 runs no metrics server (several workers on one host, or tests).
  const metricsServer = config.workerMetricsPort > 0 ? await serveWorkerMetrics({ port: config.workerMetricsPort, token: config.metricsToken, logger }) : null;
  logger.info({ concurrency: config.workerConcurrency, threads: config.piscinaThreads, metricsPort: config.workerMetricsPort || null }, 'workers running');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    logger.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'worker shutting down');
    setTimeout(() => {
      logger.error('worker shutdown overran; exiting anyway (jobs still held return to their queues through stall detection)');
      process.exit(1);
    }, hardStopMs).unref();
    try {
      const report = await running.close(config.shutdownTimeoutMs);
      await orm.close();
      metricsServer?.close();
      logger.info({ ...report, totalMs: Date.now() - started }, 'worker stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'worker shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error(error);
  process.exit(1);
});
