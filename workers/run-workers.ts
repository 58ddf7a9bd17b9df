import type { MikroORM } from '@mikro-orm/postgresql';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { InvocationCache } from '../db/invocation-cache.js';
import { recordIdFor } from '../db/repositories/jobs.js';
import { createRedis } from '../db/redis.js';
import { jobRegistry } from '../jobs/registry.js';
import { JobStateWriter } from './job-state-writer.js';
import { createEvaluationPool, taskRunner } from './pools.js';
import type { JobLifecycleHook } from './lifecycle.js';
import { createProcessor } from './processor.js';
import { runWebhookDelivery } from './webhooks/run-webhook-delivery.js';
import { closeQueues, createQueues, type QueuedJobData } from './queues.js';
import { Sweeper } from './sweeper.js';

export interface WorkerDeps {
  config: Config;
  orm: MikroORM;
  logger: Logger;
}

export interface RunningWorkers {
  workers: Worker<QueuedJobData>[];
  writer: JobStateWriter;
  sweeper: Sweeper;
  /** Stops taking jobs, lets active ones finish (up to BullMQ's close), flushes writes, closes pools and connections. */
  close(): Promise<void>;
}

/**
 * Lock and stall settings: a job's lock lasts 30 s and is renewed every 15 s while it runs; a job whose
 * worker died is noticed within 30 s and retried; a job that stalls twice (it keeps killing workers)
 * fails instead of looping.
 */
export const workerLockSettings = { lockDuration: 30_000, stalledInterval: 30_000, maxStalledCount: 2 } as const;

export function cancelChannel(prefix: string): string {
  return `${prefix}:jobs:cancel`;
}

/** Starts one BullMQ worker per job type, all sharing one Piscina pool and one batched state writer. */
export async function runWorkers(deps: WorkerDeps): Promise<RunningWorkers> {
  const { config, orm, logger } = deps;
  const redis: Redis = createRedis(config.redisUrl, 'commands');
  const subscriber: Redis = createRedis(config.redisUrl, 'blocking');
  const pool = createEvaluationPool({ threads: config.piscinaThreads, taskTimeoutMs: config.taskTimeoutMs });
  const writer = new JobStateWriter(orm.em.fork(), logger);
  const cache = new InvocationCache(redis, config.queuePrefix);
  const runTask = taskRunner(pool, config.taskTimeoutMs);
  /** Lifecycle hooks (metrics, webhooks…): one line each. */
  const webhooks = runWebhookDelivery({ config, orm, logger });
  const hooks: JobLifecycleHook[] = [webhooks.hook];

  const workers = [...jobRegistry.values()].map((definition) => {
    const worker = new Worker<QueuedJobData>(definition.name, createProcessor(definition, { orm, redis, cache, runTask, writer, logger, hooks }), {
      connection: createRedis(config.redisUrl, 'blocking'),
      prefix: config.queuePrefix,
      concurrency: definition.queue.concurrency ?? config.workerConcurrency,
      ...workerLockSettings,
    });
    worker.on('error', (error) => logger.error({ err: error, queue: definition.name }, 'worker error'));
    worker.on('failed', (job, error) => {
      // A job failed by the stall checker never reached our processor's catch: record it here.
      if (job && job.finishedOn && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        void writer.fail(recordIdFor(job.id as string), error.message, job.attemptsMade).catch((e) => logger.error({ err: e }, 'failed to record failure'));
      }
    });
    return worker;
  });

  const queueConnection = createRedis(config.redisUrl, 'blocking');
  const queues = createQueues(queueConnection, config.queuePrefix);
  const sweeper = new Sweeper({ orm, redis, queues, prefix: config.queuePrefix, logger }, { intervalMs: config.sweeperIntervalMs });
  sweeper.start();

  await subscriber.subscribe(cancelChannel(config.queuePrefix));
  subscriber.on('message', (_channel, jobId) => {
    for (const worker of workers) worker.cancelJob(jobId, 'cancelled by the user');
  });

  return {
    workers,
    writer,
    sweeper,
    async close() {
      await sweeper.stop();
      await Promise.all(workers.map((worker) => worker.close()));
      await writer.drain();
      await webhooks.close();
      await pool.destroy();
      await closeQueues(queues);
      await Promise.all([...workers.map((worker) => worker.disconnect()), redis.quit(), subscriber.quit(), queueConnection.quit()]);
    },
  };
}
