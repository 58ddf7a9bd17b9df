import type { MikroORM } from '@mikro-orm/postgresql';
import { Worker } from 'bullmq';
import type { RedisClient } from '../../lib/redis.js';
import type { Logger } from 'pino';
import { createTierLimiters } from '../../queue/tier-budgets.js';
import { RequestLogRecorder } from '../../db/request-log-recorder.js';
import type { Config } from '../../config.js';
import type { JobRegistry } from '../../jobs/registry.js';
import { createRedis } from '../../lib/redis.js';
import type { JobQueues } from '../../queue/queues.js';
import type { FairQueues } from '../../queue/fair-share/fair-queues.js';
import { upsertPlatformSchedules } from '../../queue/schedules/platform-schedules.js';
import { removeJobQueueSchedulers, restoreSchedulers, schedulesRestoredKey } from './restore-schedulers.js';
import { createTickProcessor } from './tick.processor.js';
import { createAdmission } from '../../queue/admission.js';
import {
  createScheduleTickQueue,
  scheduleTickQueueName,
  type ScheduleTickData,
  type ScheduleTickQueue,
} from '../../queue/schedules/tick-queue.js';

export interface ScheduleTicks {
  ticks: ScheduleTickQueue;
  worker: Worker<ScheduleTickData>;
  /** The request-log rows of scheduled runs (flushed every REQUEST_LOG_FLUSH_MS, and at close). */
  requestLog: RequestLogRecorder;
  close(): Promise<void>;
}

/** Ticks are small (a read, a check, an insert): a few at a time per worker process is plenty. */
const tickConcurrency = 4;

/**
 * The schedule side of a worker process: puts the schedules PostgreSQL holds back into Redis (the
 * platform's too, when PLATFORM_SCHEDULES), then runs the tick worker that submits their runs. It does so
 * again whenever Redis turns out to have lost its data while the process runs (checked every
 * SWEEPER_INTERVAL_MS), so schedules come back without a worker restart.
 */
export async function runScheduleTicks(deps: {
  config: Config;
  orm: MikroORM;
  redis: RedisClient;
  queues: JobQueues;
  /** Fair sharing of the sharded queues; null or absent when FAIR_SHARING is off. */
  fair?: FairQueues | null;
  logger: Logger;
  registry: JobRegistry;
}): Promise<ScheduleTicks> {
  const { config, orm, redis, queues, logger, registry } = deps;
  const queueConnection = createRedis(config.redis, 'enqueue');
  const ticks = createScheduleTickQueue(queueConnection, config.queuePrefix);
  const requestLog = new RequestLogRecorder(orm.em.fork(), logger, {
    flushIntervalMs: config.requestLogFlushMs,
    maxBuffer: config.requestLogBufferMax,
  }).start();

  const legacy = await removeJobQueueSchedulers(queues);
  if (legacy > 0) logger.info({ removed: legacy }, 'removed schedulers left on job queues by an earlier version');
  const restore = async () => {
    if (config.platformSchedules) await upsertPlatformSchedules(ticks, config, registry);
    await restoreSchedulers({ orm, redis, ticks, prefix: config.queuePrefix, logger });
  };
  await restore();
  let checking: Promise<void> = Promise.resolve();
  const watch = setInterval(() => {
    checking = checking
      .then(async () => {
        if (!(await redis.exists(schedulesRestoredKey(config.queuePrefix)))) await restore();
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'could not check that Redis still holds the schedules; will try again'));
  }, config.sweeperIntervalMs).unref();

  const processor = createTickProcessor({
    orm,
    queues,
    fair: deps.fair ?? null,
    ticks,
    logger,
    requestLog,
    registry,
    tierLimiters: createTierLimiters(redis, config),
    admission: createAdmission(orm.em, config),
  });
  const worker = new Worker<ScheduleTickData>(scheduleTickQueueName, processor, {
    connection: createRedis(config.redis, 'blocking'),
    prefix: config.queuePrefix,
    concurrency: tickConcurrency,
  });
  worker.on('error', (error) => logger.error({ err: error, queue: scheduleTickQueueName }, 'schedule tick worker error'));
  worker.on('failed', (tick, error) => {
    if (tick?.finishedOn) logger.error({ err: error, tick: tick.id, schedule: tick.data }, 'a scheduled run could not be submitted');
  });

  return {
    ticks,
    worker,
    requestLog,
    async close() {
      clearInterval(watch);
      await checking;
      await worker.close();
      await requestLog.close();
      await ticks.close();
      await Promise.all([worker.disconnect(), queueConnection.quit()]);
    },
  };
}
