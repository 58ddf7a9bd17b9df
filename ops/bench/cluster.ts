import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { loadConfig } from '../../config.js';
import type { InvocationCache } from '../../db/invocation-cache.js';
import type { JobDefinition } from '../../jobs/define-job.js';
import { createRedis, dataNodes } from '../../lib/redis.js';
import { createFairQueues } from '../../queue/fair-share/fair-queues.js';
import { createQueues } from '../../queue/queues.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { startLocalRedisCluster } from '../../tests/helpers/redis-cluster.js';
import { collectGarbage, round, startChild, waitUntil, type ScenarioResult } from './harness.js';

export interface ClusterDrainContext {
  n: number;
  /** The single-node queue-drain of this run (jobs/s), measured just before on the same machine. */
  singleNodeJobsPerSecond: number;
  /** The platform's env (DATABASE_URL, QUEUE_SHARDS…); REDIS_CLUSTER_NODES (which wins over REDIS_URL) is added. */
  platformEnv: Record<string, string>;
  em: EntityManager;
  logger: Logger;
  cache: InvocationCache;
  invoke: JobDefinition;
  customerId: string;
  substrateId: string;
  countFinished: (since: Date) => Promise<number>;
  /**
   * The single-node worker process: stopped (SIGSTOP) for the cluster run, since both share the database and
   * its sweeper would otherwise enqueue the cluster's accepted rows, which its Redis does not hold, and run them too.
   */
  singleNodeWorkerPid: number;
  log: (message: string) => void;
}

/** `INFO commandstats` calls of the queue scripts (`EVALSHA`, and `EVAL` of a script not yet cached). */
function scriptCalls(commandstats: string): number {
  let calls = 0;
  for (const match of commandstats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(match[2]);
  return calls;
}

/**
 * queue-drain on a local 3-master Redis Cluster of the bench's own (issue 17): one worker process with
 * REDIS_CLUSTER_NODES, the same bulk submit and the same N as the single-node run. Prints each master's
 * share of the queue scripts (`INFO commandstats` deltas) and the cluster / single-node throughput ratio.
 */
export async function runClusterDrain(context: ClusterDrainContext): Promise<ScenarioResult> {
  const { n, log } = context;
  const cluster = await startLocalRedisCluster(3);
  const env = {
    ...context.platformEnv,
    REDIS_CLUSTER_NODES: cluster.nodes,
    QUEUE_PREFIX: `${context.platformEnv.QUEUE_PREFIX}-cl`,
  };
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ ...process.env, ...env });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  const redis = createRedis(config.redis, 'blocking');
  process.kill(context.singleNodeWorkerPid, 'SIGSTOP');
  const worker = startChild('workers/main.ts', env, 'cluster worker');
  try {
    const queues = createQueues(redis, config);
    const fair = createFairQueues(redis, config, queues);
    const masters = await dataNodes(redis);
    // The worker is up once its BullMQ workers are: every invoke shard has one.
    await waitUntil(
      async () => (await Promise.all(queues.ofType('invoke').map((queue) => queue.getWorkersCount()))).every((c) => c > 0),
      60_000,
      200,
    );
    await collectGarbage(worker.process.pid);
    const before = await Promise.all(masters.map(async (node) => scriptCalls(await node.info('commandstats'))));
    log(`cluster: ${n} jobs on 3 masters (${cluster.nodes})`);
    const since = new Date();
    const started = performance.now();
    await submitJobsBulk(
      { em: context.em, queues, fair, logger: context.logger, cache: context.cache },
      context.customerId,
      context.invoke,
      Array.from({ length: n }, (_, i) => ({ substrate_id: context.substrateId, parameters: { x: i, y: 3 } })),
      fair?.weightOf('enterprise') ?? 1,
    );
    await waitUntil(async () => (await context.countFinished(since)) >= n, 600_000, 100);
    const seconds = (performance.now() - started) / 1000;
    const after = await Promise.all(masters.map(async (node) => scriptCalls(await node.info('commandstats'))));
    const perMaster = masters.map((node, i) => ({ node: `${node.options.host}:${node.options.port}`, scripts: after[i]! - before[i]! }));
    const total = perMaster.reduce((sum, master) => sum + master.scripts, 0);
    const shares = perMaster.map((master) => ({ ...master, share: round(master.scripts / Math.max(total, 1), 3) }));
    for (const master of shares)
      log(`cluster: master ${master.node}: ${master.scripts} EVALSHA/EVAL calls, ${(master.share * 100).toFixed(1)} %`);
    const jobsPerSecond = n / seconds;
    const ratio = jobsPerSecond / context.singleNodeJobsPerSecond;
    const spread = shares.every((master) => master.share >= 0.2);
    await queues.close();
    return {
      scenario: 'cluster-drain',
      n,
      unit: 'jobs/s',
      platform: round(jobsPerSecond),
      baseline: round(context.singleNodeJobsPerSecond),
      ratio: round(ratio, 3),
      target: 'ratio >= 0.8, every master >= 20 % of scripts',
      met: ratio >= 0.8 && spread,
      details: { cluster_seconds: round(seconds, 3), baseline_is: 'single-node queue-drain, same run', script_calls_per_master: shares },
    };
  } finally {
    await worker.stop();
    process.kill(context.singleNodeWorkerPid, 'SIGCONT');
    redis.disconnect();
    await cluster.stop();
  }
}
