import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../api/logger.js';
import { createOrm } from '../db/orm.js';
import { runWorkers } from './run-workers.js';

/** The worker process: `node dist/workers/main.js` (or `tsx workers/main.ts`). */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'worker');
  const orm = await createOrm(config.databaseUrl);
  const running = await runWorkers({ config, orm, logger });
  logger.info({ concurrency: config.workerConcurrency, threads: config.piscinaThreads }, 'workers running');

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'worker shutting down');
    const deadline = setTimeout(() => process.exit(1), 28_000).unref();
    await running.close();
    await orm.close();
    clearTimeout(deadline);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error(error);
  process.exit(1);
});
