import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../config.js';
import { runEntryPoint, stopOnSignals } from '../lib/entry-point.js';
import { assertRedisNoEviction } from '../lib/redis-eviction-policy.js';
import { ensureAdmin } from './auth/bootstrap-admin.js';
import { createApp } from './app.js';
import { createApiServer } from './http-server.js';
import { createApiDeps } from './create-deps.js';
import { createLogger } from '../lib/logger.js';
import { describeCustomerRedisShares } from '../queue/redis-share.js';

/** The API process: `node dist/api/main.js` (or `tsx api/main.ts`). */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'api');
  await assertRedisNoEviction(config.redis, logger);
  const deps = await createApiDeps(config, logger);
  await Promise.all([ensureAdmin(deps), deps.batchChecker.warm()]);
  const server = createApiServer(createApp(deps), config).listen(config.port);
  await once(server, 'listening');
  logger.info({ port: config.port }, 'api listening');
  logger.info({ byTier: describeCustomerRedisShares(config) }, 'the most of Redis one customer can hold (queue/redis-share.ts)');

  stopOnSignals(logger, 'api', config.shutdownTimeoutMs, async () => {
    const started = Date.now();
    // Stop accepting; let requests in flight (a `Prefer: wait`, an event stream) finish until the deadline, then cut them off.
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections go idle as their requests finish; close each as soon as it does.
    const closeIdle = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
    const cutOff = await Promise.race([drained.then(() => false), sleep(config.shutdownTimeoutMs, true, { ref: false })]);
    clearInterval(closeIdle);
    if (cutOff) server.closeAllConnections();
    const httpMs = Date.now() - started;
    // Flushes buffered request logs, then closes queues, Redis and PostgreSQL.
    await deps.close();
    return { cutOff, httpMs };
  });
}

runEntryPoint(main);
