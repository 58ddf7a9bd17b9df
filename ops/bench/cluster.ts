/**
 * The `--cluster` scenarios (issue 17): the platform on a local 3-master Redis Cluster of the bench's own,
 * beside the single-node figure of the same run on the same machine.
 *
 *   cluster-drain        queue-drain: the same bulk submit and N, one worker process
 *   cluster-http-submit  http-submit: the same autocannon load on an API process of its own (and a worker)
 *
 * Each prints every master's commands (`INFO commandstats` deltas: all commands, and the queue scripts,
 * `EVALSHA`/`EVAL`) and Redis CPU (`INFO cpu` deltas), so the spread over the masters is visible.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadConfig } from '../../config.js';
import type { InvocationCache } from '../../db/invocation-cache.js';
import type { JobDefinition } from '../../jobs/define-job.js';
import { createRedis, dataNodes } from '../../lib/redis.js';
import { createFairQueues } from '../../queue/fair-share/fair-queues.js';
import { createQueues } from '../../queue/queues.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { startLocalRedisCluster } from '../../tests/helpers/redis-cluster.js';
import {
  collectGarbage,
  cpuBreakdown,
  cpuSeconds,
  cpuSecondsMatching,
  redisActivity,
  round,
  startChild,
  waitUntil,
  type Child,
  type RedisActivity,
  type ScenarioResult,
} from './harness.js';
import { measureHttpSubmit, type HttpSubmitLoad, type HttpSubmitMeasurement } from './http-submit.js';

/** What both cluster scenarios need of the bench's run. */
export interface ClusterContext {
  /** The platform's env (DATABASE_URL, QUEUE_SHARDS…); REDIS_CLUSTER_NODES (which wins over REDIS_URL) is added. */
  platformEnv: Record<string, string>;
  /**
   * The single-node worker process: stopped (SIGSTOP) for the cluster run, since both share the database and
   * its sweeper would otherwise enqueue the cluster's accepted rows, which its Redis does not hold, and run them too.
   */
  singleNodeWorkerPid: number;
  log: (message: string) => void;
}

export interface ClusterDrainContext extends ClusterContext {
  n: number;
  /** The single-node queue-drain of this run (jobs/s), measured just before on the same machine. */
  singleNodeJobsPerSecond: number;
  /** That run's CPU seconds per process group and Redis cost per job, reported beside the cluster's. */
  singleNodeCost: Record<string, unknown>;
  em: EntityManager;
  logger: Logger;
  cache: InvocationCache;
  invoke: JobDefinition;
  customerId: string;
  substrateId: string;
  countFinished: (since: Date) => Promise<number>;
}

export interface ClusterHttpSubmitContext extends ClusterContext {
  /** The single-node http-submit of this run, measured just before on the same machine. */
  singleNode: HttpSubmitMeasurement;
  /** Port of the cluster's own API process. */
  apiPort: number;
  substrateId: string;
  /** The same load as the single-node run; url, invoke queues, settle and CPU groups are the cluster's. */
  load: Omit<HttpSubmitLoad, 'url' | 'invokeQueues' | 'settle' | 'cpuGroups' | 'mark'>;
}

/** A platform on a fresh local 3-master cluster: its worker, optionally its API, and a client of its own. */
interface ClusterPlatform {
  nodes: string;
  queues: ReturnType<typeof createQueues>;
  fair: ReturnType<typeof createFairQueues>;
  masters: Redis[];
  worker: Child;
  api: Child | null;
  stop(): Promise<void>;
}

async function startClusterPlatform(context: ClusterContext, apiPort: number | null): Promise<ClusterPlatform> {
  const cluster = await startLocalRedisCluster(3);
  const env = {
    ...context.platformEnv,
    REDIS_CLUSTER_NODES: cluster.nodes,
    QUEUE_PREFIX: `${context.platformEnv.QUEUE_PREFIX}-cl`,
    ...(apiPort === null ? {} : { PORT: String(apiPort) }),
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
  const api = apiPort === null ? null : startChild('api/main.ts', env, 'cluster api');
  const queues = createQueues(redis, config);
  const stop = async () => {
    await queues.close().catch(() => undefined);
    await api?.stop();
    await worker.stop();
    process.kill(context.singleNodeWorkerPid, 'SIGCONT');
    redis.disconnect();
    await cluster.stop();
  };
  try {
    const fair = createFairQueues(redis, config, queues);
    const masters = await dataNodes(redis);
    // The worker is up once its BullMQ workers are: every invoke shard has one.
    await waitUntil(
      async () => (await Promise.all(queues.ofType('invoke').map((queue) => queue.getWorkersCount()))).every((c) => c > 0),
      60_000,
      200,
    );
    if (apiPort !== null)
      await waitUntil(async () => (await fetch(`http://127.0.0.1:${apiPort}/api/v1/ready`).catch(() => null))?.status === 200, 60_000, 200);
    await Promise.all([collectGarbage(worker.process.pid), collectGarbage(api?.process.pid)]);
    return { nodes: cluster.nodes, queues, fair, masters, worker, api, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

const readMasters = (masters: Redis[]): Promise<RedisActivity[]> => Promise.all(masters.map((node) => redisActivity(node)));

/** `INFO commandstats` calls of the queue scripts (`EVALSHA`, and `EVAL` of a script not yet cached). */
const scriptCalls = (activity: RedisActivity): number => (activity.calls.evalsha ?? 0) + (activity.calls.eval ?? 0);
const allCalls = (activity: RedisActivity): number => Object.values(activity.calls).reduce((sum, calls) => sum + calls, 0);

export interface MasterSpread {
  node: string;
  /** EVALSHA + EVAL calls meanwhile. */
  scripts: number;
  /** This master's share of all masters' script calls. */
  script_share: number;
  /** Every command meanwhile (INFO itself included, a handful). */
  commands: number;
  command_share: number;
  cpu_seconds: number;
}

/** Each master's commands, scripts and CPU between two readings, logged one line per master. */
function spreadOver(
  masters: Redis[],
  before: RedisActivity[],
  after: RedisActivity[],
  label: string,
  log: (message: string) => void,
): MasterSpread[] {
  const deltas = masters.map((node, i) => ({
    node: `${node.options.host}:${node.options.port}`,
    scripts: scriptCalls(after[i]!) - scriptCalls(before[i]!),
    commands: allCalls(after[i]!) - allCalls(before[i]!),
    cpu_seconds: round(after[i]!.cpuSeconds - before[i]!.cpuSeconds, 2),
  }));
  const scripts = Math.max(
    deltas.reduce((sum, d) => sum + d.scripts, 0),
    1,
  );
  const commands = Math.max(
    deltas.reduce((sum, d) => sum + d.commands, 0),
    1,
  );
  const spread = deltas.map((d) => ({ ...d, script_share: round(d.scripts / scripts, 3), command_share: round(d.commands / commands, 3) }));
  for (const m of spread)
    log(
      `${label}: master ${m.node}: ${m.commands} commands (${(m.command_share * 100).toFixed(1)} %), ` +
        `${m.scripts} EVALSHA/EVAL (${(m.script_share * 100).toFixed(1)} %), ${m.cpu_seconds} CPU-s`,
    );
  return spread;
}

/** Redis cost per job summed over the masters: what sizing a cluster needs. */
function perJob(spread: MasterSpread[], jobs: number) {
  const sum = (key: 'commands' | 'scripts' | 'cpu_seconds') => spread.reduce((total, m) => total + m[key], 0);
  return {
    commands_per_job: round(sum('commands') / jobs, 2),
    scripts_per_job: round(sum('scripts') / jobs, 2),
    redis_cpu_us_per_job: round((sum('cpu_seconds') / jobs) * 1e6, 1),
  };
}

/**
 * queue-drain on the cluster: one worker process with REDIS_CLUSTER_NODES, the same bulk submit and the same N
 * as the single-node run. Target (issue 17): ratio ≥ 0.8 and every master ≥ 20 % of the queue scripts.
 */
export async function runClusterDrain(context: ClusterDrainContext): Promise<ScenarioResult> {
  const { n, log } = context;
  const platform = await startClusterPlatform(context, null);
  try {
    const { queues, fair, masters } = platform;
    const before = await readMasters(masters);
    log(`cluster-drain: ${n} jobs on 3 masters (${platform.nodes})`);
    const cpuGroups = { worker: () => cpuSeconds(platform.worker.process.pid), postgres: () => cpuSecondsMatching(/^postgres/) };
    let submitSeconds = 0;
    const { result: seconds, cpu } = await cpuBreakdown(cpuGroups, async () => {
      const since = new Date();
      const started = performance.now();
      await submitJobsBulk(
        { em: context.em, queues, fair, logger: context.logger, cache: context.cache },
        context.customerId,
        context.invoke,
        Array.from({ length: n }, (_, i) => ({ substrate_id: context.substrateId, parameters: { x: i, y: 3 } })),
        fair?.weightOf('enterprise') ?? 1,
      );
      submitSeconds = (performance.now() - started) / 1000;
      await waitUntil(async () => (await context.countFinished(since)) >= n, 600_000, 100);
      return (performance.now() - started) / 1000;
    });
    const spread = spreadOver(masters, before, await readMasters(masters), 'cluster-drain', log);
    const jobsPerSecond = n / seconds;
    const ratio = jobsPerSecond / context.singleNodeJobsPerSecond;
    const spreadMet = spread.every((master) => master.script_share >= 0.2);
    return {
      scenario: 'cluster-drain',
      n,
      unit: 'jobs/s',
      platform: round(jobsPerSecond),
      baseline: round(context.singleNodeJobsPerSecond),
      ratio: round(ratio, 3),
      target: 'ratio >= 0.8, every master >= 20 % of scripts',
      met: ratio >= 0.8 && spreadMet,
      details: {
        cluster_seconds: round(seconds, 3),
        /** Until the bench's bulk submit (rows, then addBulk through its own cluster client) returned. */
        cluster_submit_seconds: round(submitSeconds, 3),
        baseline_is: 'single-node queue-drain, same run',
        per_master: spread,
        redis_per_job: perJob(spread, n),
        cpu_seconds_during_cluster_run: cpu,
        single_node: context.singleNodeCost,
      },
    };
  } finally {
    await platform.stop();
  }
}

/**
 * http-submit on the cluster: an API process and a worker with REDIS_CLUSTER_NODES take the same autocannon
 * load as the single-node API (invoke shards paused meanwhile), then drain it. Reports accepted/s beside the
 * single-node figure, and each master's commands during the load (submits) and the drain (the jobs' runs).
 * Target: every accepted job completed, ratio ≥ 0.8 of the single-node API on the same machine.
 */
export async function runClusterHttpSubmit(context: ClusterHttpSubmitContext): Promise<ScenarioResult> {
  const { log } = context;
  const platform = await startClusterPlatform(context, context.apiPort);
  try {
    const { masters, queues } = platform;
    const readings: Partial<Record<'load' | 'drain' | 'done', RedisActivity[]>> = {};
    log(`cluster-http-submit: 64 connections for ${context.load.duration} s on 3 masters (${platform.nodes})`);
    const run = await measureHttpSubmit({
      ...context.load,
      url: `http://127.0.0.1:${context.apiPort}/api/v1/substrates/${context.substrateId}/invoke`,
      invokeQueues: queues.ofType('invoke'),
      settle: () => Promise.all([collectGarbage(platform.api?.process.pid), collectGarbage(platform.worker.process.pid)]),
      cpuGroups: {
        api: () => cpuSeconds(platform.api?.process.pid),
        worker: () => cpuSeconds(platform.worker.process.pid),
        postgres: () => cpuSecondsMatching(/^postgres/),
      },
      mark: async (phase) => void (readings[phase] = await readMasters(masters)),
    });
    const duringLoad = spreadOver(masters, readings.load!, readings.drain!, 'cluster-http-submit (load)', log);
    const duringDrain = spreadOver(masters, readings.drain!, readings.done!, 'cluster-http-submit (drain)', log);
    const ratio = run.acceptedPerSecond / context.singleNode.acceptedPerSecond;
    const allCompleted = run.completed === run.acceptedRows;
    return {
      scenario: 'cluster-http-submit',
      n: run.accepted,
      unit: 'accepted/s',
      platform: round(run.acceptedPerSecond),
      baseline: round(context.singleNode.acceptedPerSecond),
      ratio: round(ratio, 3),
      target: 'ratio >= 0.8; every accepted job completed',
      met: ratio >= 0.8 && allCompleted,
      details: {
        baseline_is: 'single-node http-submit (platform side), same run',
        accepted: run.accepted,
        accepted_rows: run.acceptedRows,
        completed: run.completed,
        non_2xx: run.non2xx,
        statuses: run.statuses,
        problem: run.problem,
        errors: run.errors,
        drain_seconds: run.drainSeconds,
        drain_jobs_per_second: round(run.acceptedRows / Math.max(run.drainSeconds, 0.001)),
        p99_ms: run.p99Ms,
        single_node_p99_ms: context.singleNode.p99Ms,
        cpu_seconds_during_load: run.cpu,
        single_node_cpu_seconds_during_load: context.singleNode.cpu,
        per_master_during_load: duringLoad,
        per_master_during_drain: duringDrain,
        redis_per_job_submit: perJob(duringLoad, Math.max(run.acceptedRows, 1)),
        redis_per_job_run: perJob(duringDrain, Math.max(run.acceptedRows, 1)),
      },
    };
  } finally {
    await platform.stop();
  }
}
