import { Redis } from 'ioredis';

/**
 * A Redis connection. BullMQ workers and subscribers need `maxRetriesPerRequest: null` (block forever);
 * request-path connections fail fast instead so an outage answers quickly, and pipeline automatically:
 * the commands of one event-loop turn (cache lookups, rate-limit counters of concurrent requests) go out
 * in one write. BullMQ's connections are never auto-pipelined (BullMQ does not support it).
 */
export function createRedis(url: string, purpose: 'blocking' | 'commands' = 'commands'): Redis {
  const client = new Redis(url, {
    maxRetriesPerRequest: purpose === 'blocking' ? null : 2,
    enableReadyCheck: true,
    connectionName: `chrysalis-${purpose}`,
    enableAutoPipelining: purpose === 'commands',
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  // Without an 'error' listener ioredis writes every failed reconnect to stderr as unstructured text
  // (dozens of lines a second while Redis is down; see tests/faults). An outage shows where it matters
  // instead: the commands that fail (503s, the enqueue fallback, logged warnings), BullMQ's 'error'
  // events (workers log them) and /ready. The client keeps reconnecting either way.
  client.on('error', () => undefined);
  return client;
}
