import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { GroupCommit } from '../db/group-commit.js';
import { RedisMemoryGuard } from '../lib/redis-memory-guard.js';
import { InvocationCache } from '../db/invocation-cache.js';
import { FinishedJobListener, finishedJobsChannel } from '../queue/job-notices.js';
import { insertFinishedJobs, type FinishedJobRow } from '../db/jobs/insert-jobs.js';
import { createOrm } from '../db/orm.js';
import { createRedis } from '../lib/redis.js';
import { LeaseSemaphores } from '../lib/lease-semaphore.js';
import { addCustomerJobsSource, addPendingEnqueuesSource, addPoolSource, addQueueDepthSource } from '../lib/metrics/catalog.js';
import { createQueues } from '../queue/queues.js';
import { createFairQueues } from '../queue/fair-share/fair-queues.js';
import { createScheduleTickQueue } from '../queue/schedules/tick-queue.js';
import { createJobInserter } from '../queue/submit-job.js';
import { PendingEnqueues } from '../queue/pending-enqueues.js';
import { createAdmission } from '../queue/admission.js';
import { createWebhookQueue, webhookQueueType } from '../queue/webhook-queue.js';
import { closePasswordHasher, usePasswordHasher } from './auth/passwords.js';
import { PrincipalCache } from './auth/principal.js';
import type { ApiDeps } from './deps.js';
import { SubstrateBatchChecker } from './substrate-batch/substrate-batch-checker.js';
import { JobWaiter } from './job-waiter.js';
import { countApiCacheLookup, customerJobsReader, queueDepthReader } from './metrics.js';
import { RequestLogRecorder } from '../db/request-log-recorder.js';

/** Opens every connection the API needs. `close()` releases them all. */
export async function createApiDeps(config: Config, logger: Logger): Promise<ApiDeps & { close(): Promise<void> }> {
  const orm = await createOrm(config.databaseUrl);
  const passwordHasher = usePasswordHasher({
    threads: config.passwordHashThreads,
    maxQueue: config.passwordHashMaxQueue,
    cost: config.passwordHashCost,
  });
  const removePasswordPoolSource = addPoolSource('passwords', passwordHasher);
  const redis = createRedis(config.redis, 'commands');
  const queueConnection = createRedis(config.redis, 'enqueue');
  const subscriber = createRedis(config.redis, 'blocking');
  const queues = createQueues(queueConnection, config);
  const fair = createFairQueues(redis, config, queues);
  const webhookQueue = createWebhookQueue(queueConnection, config.queuePrefix);
  const scheduleTicks = createScheduleTickQueue(queueConnection, config.queuePrefix);
  const principals = new PrincipalCache(orm.em.fork(), redis, config.queuePrefix);
  await principals.listen(subscriber);
  const waiter = new JobWaiter(config.redis, config.queuePrefix, (id) => queues.types().map((type) => queues.forJob(type, id).name));
  const notices = new FinishedJobListener({
    databaseUrl: config.databaseUrl,
    channel: finishedJobsChannel(config.queuePrefix),
    logger,
    onNotice: (notice) => waiter.receive(notice),
  });
  await notices.start();
  const jobInserter = createJobInserter(orm.em.fork());
  const pendingEnqueues = new PendingEnqueues();
  const removePendingEnqueuesSource = addPendingEnqueuesSource(pendingEnqueues);
  const finishedJobsEm = orm.em.fork();
  // Quick commits: under load they would go out a row or two at a time; the linger gathers ~10.
  const finishedJobs = new GroupCommit((rows: FinishedJobRow[]) => insertFinishedJobs(finishedJobsEm, rows), { lingerMs: 2 });
  const requestLog = new RequestLogRecorder(orm.em.fork(), logger, {
    flushIntervalMs: config.requestLogFlushMs,
    maxBuffer: config.requestLogBufferMax,
  }).start();
  const removeQueueDepthSource = addQueueDepthSource(
    queueDepthReader([
      ...queues.types().map((type) => ({ label: type, queues: queues.ofType(type) })),
      { label: webhookQueueType, queues: [webhookQueue] },
    ]),
  );
  const removeCustomerJobsSource = addCustomerJobsSource(customerJobsReader(orm.em.fork()));
  // Under load, lookups gather for up to 1 ms: one HMGET for several requests instead of one each.
  const cache = new InvocationCache(redis, config.queuePrefix, {
    lookupLingerMs: 1,
    maxValueBytes: config.invocationCacheMaxBytes,
    maxBytesPerCustomer: config.invocationCacheMaxBytesPerCustomer,
  });
  cache.onLookup = countApiCacheLookup;
  const leases = new LeaseSemaphores(redis, `${config.queuePrefix}:concurrency`, { leaseMs: config.concurrencyLeaseMs });
  const memoryGuard = new RedisMemoryGuard(redis, config.redisMemoryGuard);
  const batchChecker = new SubstrateBatchChecker();
  return {
    batchChecker,
    config,
    memoryGuard,
    orm,
    redis,
    queues,
    fair,
    webhookQueue,
    scheduleTicks,
    logger,
    principals,
    cache,
    finishedJobs,
    jobInserter,
    pendingEnqueues,
    waiter,
    requestLog,
    leases,
    admission: createAdmission(orm.em, config),
    async close() {
      leases.close();
      await finishedJobs.drain();
      await jobInserter.drain();
      await pendingEnqueues.drain();
      removePendingEnqueuesSource();
      await requestLog.close();
      removeQueueDepthSource();
      removeCustomerJobsSource();
      await notices.close();
      await waiter.close();
      await queues.close();
      await webhookQueue.close();
      await scheduleTicks.close();
      await Promise.all([redis.quit(), queueConnection.quit(), subscriber.quit()]);
      await orm.close();
      removePasswordPoolSource();
      await closePasswordHasher(passwordHasher);
      await batchChecker.close();
    },
  };
}
