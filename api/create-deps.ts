import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { InvocationCache } from '../db/invocation-cache.js';
import { createOrm } from '../db/orm.js';
import { createRedis } from '../db/redis.js';
import { closeQueues, createQueues } from '../workers/queues.js';
import { PrincipalCache } from './auth/principal.js';
import type { ApiDeps } from './deps.js';
import { JobWaiter } from './job-waiter.js';

/** Opens every connection the API needs. `close()` releases them all. */
export async function createApiDeps(config: Config, logger: Logger): Promise<ApiDeps & { close(): Promise<void> }> {
  const orm = await createOrm(config.databaseUrl);
  const redis = createRedis(config.redisUrl, 'commands');
  const queueConnection = createRedis(config.redisUrl, 'blocking');
  const subscriber = createRedis(config.redisUrl, 'blocking');
  const queues = createQueues(queueConnection, config.queuePrefix);
  const principals = new PrincipalCache(orm.em.fork(), redis, config.queuePrefix);
  await principals.listen(subscriber);
  const waiter = new JobWaiter(config.redisUrl, config.queuePrefix);
  await waiter.ready();
  return {
    config,
    orm,
    redis,
    queues,
    logger,
    principals,
    cache: new InvocationCache(redis, config.queuePrefix),
    waiter,
    async close() {
      await waiter.close();
      await closeQueues(queues);
      await Promise.all([redis.quit(), queueConnection.quit(), subscriber.quit()]);
      await orm.close();
    },
  };
}
