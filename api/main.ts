import { once } from 'node:events';
import { ConfigError, loadConfig } from '../config.js';
import { ensureAdmin } from './auth/bootstrap-admin.js';
import { createApp } from './app.js';
import { createApiDeps } from './create-deps.js';
import { createLogger } from './logger.js';

/** The API process: `node dist/api/main.js` (or `tsx api/main.ts`). */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'api');
  const deps = await createApiDeps(config, logger);
  await ensureAdmin(deps);
  const server = createApp(deps).listen(config.port);
  await once(server, 'listening');
  logger.info({ port: config.port }, 'api listening');

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'api shutting down');
    const deadline = setTimeout(() => process.exit(1), 25_000).unref();
    server.close();
    server.closeIdleConnections();
    await deps.close();
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
