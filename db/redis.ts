import { Redis } from 'ioredis';

/**
 * A Redis connection. BullMQ workers and subscribers need `maxRetriesPerRequest: null` (block forever);
 * request-path connections fail fast instead so an outage answers quickly.
 */
export function createRedis(url: string, purpose: 'blocking' | 'commands' = 'commands'): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: purpose === 'blocking' ? null : 2,
    enableReadyCheck: true,
    connectionName: `chrysalis-${purpose}`,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}
