import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisClusterTarget, RedisTarget } from '../config.js';

export type { RedisClusterTarget, RedisNodeAddress, RedisTarget } from '../config.js';

/** A connection `createRedis` made: a single-node client or a cluster client (the same commands). */
export type RedisClient = Redis | Cluster;

export const isClusterTarget = (target: RedisTarget): target is RedisClusterTarget => typeof target !== 'string';

/** How the target reads in logs and errors: the URL without credentials, or the seed nodes. */
export function describeRedisTarget(target: RedisTarget): string {
  if (isClusterTarget(target)) return `cluster ${target.nodes.map((node) => `${node.host}:${node.port}`).join(',')}`;
  try {
    const url = new URL(target);
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return 'redis';
  }
}

/** Reconnect delay of one node's connection and of the cluster as a whole: 200 ms more per try, at most 2 s. */
const reconnectDelay = (times: number) => Math.min(times * 200, 2000);

/**
 * A Redis connection — THE way to make one (ESLint refuses `new Redis`/`new Cluster` elsewhere in the runtime),
 * so a process configured for a cluster never opens a single-node client by mistake.
 *
 * BullMQ workers and subscribers need `maxRetriesPerRequest: null` (block forever); request-path
 * connections (`commands`) fail fast instead so an outage answers quickly, and, on a single node, pipeline
 * automatically: the commands of one event-loop turn (cache lookups, rate-limit counters of concurrent
 * requests) go out in one write. `enqueue` is a process's BullMQ Queue connection (never a Worker's): it
 * waits for Redis like a blocking one (the submit's own timeout gives up, the row stays the outbox) and
 * pipelines like a request-path one, since it only adds and reads jobs, never blocks: a socket write per add
 * had cost the API ~25 µs of CPU per submit. Worker and subscriber connections (`blocking`) are never auto-pipelined: a blocking command
 * would hold every command batched behind it.
 *
 * On a cluster the client follows MOVED/ASK redirections and refreshes its slot map itself (a caller sees
 * neither), waits out CLUSTERDOWN and TRYAGAIN (a failover in progress) and keeps reconnecting while every
 * seed is unreachable.
 */
export function createRedis(target: RedisTarget, purpose: 'blocking' | 'commands' | 'enqueue' = 'commands'): RedisClient {
  const nodeOptions = {
    maxRetriesPerRequest: purpose === 'commands' ? 2 : null,
    connectionName: `chrysalis-${purpose}`,
  } satisfies RedisOptions;
  let client: RedisClient;
  if (isClusterTarget(target)) {
    const options: ClusterOptions = {
      // No cluster-level ready check: it fails on `cluster_state:fail`, which every node reports for the
      // seconds a failover takes, and each failure tears the whole client down and reconnects it. Under
      // BullMQ that storm left workers' blocking clients reconnecting for good (tests/faults/cluster-failover).
      // Commands sent meanwhile wait out CLUSTERDOWN instead (retryDelayOnClusterDown).
      enableReadyCheck: false,
      // No auto-pipelining on a cluster: ioredis batches a turn's commands per node, and when a failover
      // moves that node's slots every command in the batch answers MOVED with its own slot. ioredis retries
      // a batch only if all errors are the same and every command that succeeded is flagged read-only (PING
      // is not), so it hands the MOVED errors to the callers and keeps its stale slot map: /ready (PING and
      // the heartbeat read together) stayed red after a `CLUSTER FAILOVER` (redis/ioredis#2075).
      // Single commands follow MOVED and refresh the slot map.
      enableAutoPipelining: false,
      clusterRetryStrategy: reconnectDelay,
      // A failover takes seconds: keep redirected and CLUSTERDOWN/TRYAGAIN commands retrying for that long.
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 300,
      retryDelayOnFailover: 200,
      maxRedirections: 32,
      slotsRefreshTimeout: 2000,
      redisOptions: {
        ...nodeOptions,
        ...(target.tls ? { tls: {} } : {}),
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
      },
      ...(target.natMap ? { natMap: target.natMap } : {}),
      ...(target.tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
    };
    client = new Cluster(target.nodes, options);
  } else {
    client = new Redis(target, {
      ...nodeOptions,
      enableReadyCheck: true,
      enableAutoPipelining: purpose !== 'blocking',
      retryStrategy: reconnectDelay,
      // `subscribe` below resubscribes instead, handling the answer.
      autoResubscribe: false,
    });
  }
  // Without an 'error' listener ioredis writes every failed reconnect to stderr as unstructured text
  // (dozens of lines a second while Redis is down; see tests/faults). An outage shows where it matters
  // instead: the commands that fail (503s, the enqueue fallback, logged warnings), BullMQ's 'error'
  // events (workers log them) and /ready. The client keeps reconnecting either way.
  client.on('error', () => undefined);
  return client;
}

/**
 * Subscribes `client` to `channels`, and again each time it reconnects. ioredis's own resubscription sends
 * SUBSCRIBE from inside its ready handler and leaves the answer unhandled: a client closed while that SUBSCRIBE
 * was in flight (a shutdown just as Redis came back) ended in an unhandled rejection, "Connection is closed."
 * (the readiness suite, which restarts Redis under the API, in CI now and then). A cluster client resubscribes
 * by itself, on whichever node serves it.
 */
export async function subscribe(client: RedisClient, ...channels: string[]): Promise<void> {
  if (!(client instanceof Cluster)) {
    client.on('ready', () => {
      // Closing, or gone again: the next connection subscribes anew.
      client.subscribe(...channels).catch(() => undefined);
    });
  }
  await client.subscribe(...channels);
}

/**
 * The masters that hold data: every master of a cluster (for commands about a server rather than a key —
 * `INFO`, `CONFIG GET`, `SCAN` — which a cluster client would send to one node at random), or the client itself.
 */
export async function dataNodes(client: RedisClient): Promise<Redis[]> {
  if (!(client instanceof Cluster)) return [client];
  // A cluster client knows its nodes once it has read the slot map: a first command waits for that.
  if (client.nodes('master').length === 0) await client.ping();
  return client.nodes('master');
}
