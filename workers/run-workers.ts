import { setTimeout as delay } from 'node:timers/promises';
import type { MikroORM } from '@mikro-orm/postgresql';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Piscina } from 'piscina';
import type { RequestLogRecorder } from '../db/request-log-recorder.js';
import type { Config } from '../config.js';
import { InvocationCache } from '../db/invocation-cache.js';
import { SubstrateDefinitionCache } from '../db/substrate-definitions.js';
import { accessChangeChannel, cancelChannel, customerPauseChannel } from '../lib/channels.js';
import { finishedJobsChannel } from '../queue/job-notices.js';
import { createRedis, subscribe, type RedisClient } from '../lib/redis.js';
import { declaredTasks, jobRegistry, type JobRegistry } from '../jobs/registry.js';
import { addPoolSource } from '../lib/metrics/catalog.js';
import { HeartbeatPublisher } from './heartbeat.js';
import type { JobStateWriter } from './job-state-writer.js';
import { countInvocationCacheLookup, jobMetricsHook } from './metrics.js';
import { closeWorkersWithin, HandBackAwareStateWriter, HeldJobs, type ShutdownReport } from './shutdown.js';
import { createTaskPool, taskRunner } from './pools.js';
import type { HookJob, JobLifecycleHook } from './lifecycle.js';
import { createProcessor } from './processor.js';
import type { BundleDeps } from './bundle-processor.js';
import { PausedCustomers } from '../queue/customer-pauses.js';
import { runWebhookDelivery } from './webhooks/run-webhook-delivery.js';
import { createQueues, isRowId, queuedPayload, retention, shardConcurrency, type QueuedJobData } from '../queue/queues.js';
import { Sweeper } from './sweeper.js';
import { claimReleasableJobs } from '../db/jobs/find-jobs.js';
import { foldBundles, isBundleData } from '../queue/bundles.js';
import { ensureJobPartitions } from '../db/jobs/job-partitions.js';
import { createFairQueues, fairSpareSlots, type FairQueues } from '../queue/fair-share/fair-queues.js';
import { bulkJobsOf, FairReleaser } from './fair-releaser.js';
import { fairChargeMs } from './fair-charge.js';
import { runScheduleTicks } from './schedule-ticks/run-schedule-ticks.js';

export interface WorkerDeps {
  config: Config;
  orm: MikroORM;
  logger: Logger;
  /** The job types to run. Default: Chrysalis's (jobs/registry.ts); a test may bring more (`withJobTypes`). */
  registry?: JobRegistry;
}

export interface RunningWorkers {
  workers: Worker<QueuedJobData>[];
  writer: JobStateWriter;
  sweeper: Sweeper;
  /** Releases held jobs of the fair-shared queues as theirs finish; null when FAIR_SHARING is off. */
  releaser: FairReleaser | null;
  /** The CPU pool (its utilisation and queue are exported as metrics). */
  pool: Piscina;
  /** The request-log rows this process records: its schedules' runs, metered like API calls. */
  requestLog: RequestLogRecorder;
  /**
   * Stops taking jobs and lets active ones finish for up to `deadlineMs` (default SHUTDOWN_TIMEOUT_MS),
   * then hands those still running back to their queues; flushes writes, closes pools and connections.
   */
  close(deadlineMs?: number): Promise<ShutdownReport>;
  /** The shutdown step `close()` is in ('heartbeat', 'sweeper', … 'connections'); null before and after it. */
  readonly closingStep: string | null;
}

/** A shutdown step still running after this long is logged by name: a stuck close says where it is stuck. */
const slowShutdownStepMs = 10_000;

/**
 * Default lock and stall settings (WORKER_LOCK_DURATION_MS, WORKER_STALLED_INTERVAL_MS,
 * WORKER_MAX_STALLED_COUNT): a job's lock lasts 30 s and is renewed every 15 s while it runs; a job whose
 * worker died is noticed within 30 s (lock expiry + one stall check) and runs again; a job that stalls more
 * than twice (it keeps killing workers) fails instead of looping. The fault suite uses 2 s / 1 s, as
 * BullMQ's own stalled-job tests do.
 */
export const workerLockSettings = { lockDuration: 30_000, stalledInterval: 30_000, maxStalledCount: 2 } as const;

/** The lock and stall settings a worker runs with: the configured ones (defaults above). */
function lockSettingsOf(config: Config): { lockDuration: number; stalledInterval: number; maxStalledCount: number } {
  return {
    lockDuration: config.workerLockDurationMs,
    stalledInterval: config.workerStalledIntervalMs,
    maxStalledCount: config.workerMaxStalledCount,
  };
}

export { shardConcurrency } from '../queue/queues.js';

/**
 * Starts one BullMQ worker per queue (per job type and shard), all sharing one Piscina pool and one batched
 * state writer.
 */
export async function runWorkers(deps: WorkerDeps): Promise<RunningWorkers> {
  const { config, orm, logger, registry = jobRegistry } = deps;
  const redis: RedisClient = createRedis(config.redis, 'commands');
  const subscriber: RedisClient = createRedis(config.redis, 'blocking');
  const tasks = declaredTasks(registry);
  const pool = createTaskPool(tasks, { threads: config.piscinaThreads, taskTimeoutMs: config.taskTimeoutMs });
  const writer = new HandBackAwareStateWriter(orm.em.fork(), logger, finishedJobsChannel(config.queuePrefix));
  const cache = new InvocationCache(redis, config.queuePrefix, {
    maxValueBytes: config.invocationCacheMaxBytes,
    maxBytesPerCustomer: config.invocationCacheMaxBytesPerCustomer,
  });
  cache.onLookup = countInvocationCacheLookup;
  const runTask = taskRunner(pool, config.taskTimeoutMs, tasks, { resultMaxBytes: config.resultMaxBytes });
  const substrates = new SubstrateDefinitionCache();
  /** Lifecycle hooks (metrics, webhooks…): one line each. */
  const webhooks = runWebhookDelivery({ config, orm, logger, registry });
  const heartbeat = new HeartbeatPublisher(redis, config.queuePrefix, logger);
  const held = new HeldJobs();
  const paused = new PausedCustomers(orm.em.fork(), logger);
  await paused.start();
  // The coming partitions of `jobs` exist before this worker's first job (the retention job keeps them coming).
  await ensureJobPartitions(orm.em.fork(), { partitionDays: config.jobPartitionDays, daySeconds: config.retentionDaySeconds }).then(
    (created) => created.length > 0 && logger.info({ created }, 'job partitions created'),
    (error: unknown) =>
      logger.warn({ err: error }, 'job partition upkeep failed; new jobs land in the default partition until it succeeds'),
  );

  const queueConnection = createRedis(config.redis, 'enqueue');
  const queues = createQueues(queueConnection, config, registry);
  const fair = createFairQueues(redis, config, queues, registry);
  const releaser = fair ? createReleaser(fair) : null;
  // Measured work of the bundles held whole by fair sharing (`fairEntry`) running here, by bundle id: each is
  // charged once, when it has run (`bundles.settled`).
  const entryWork = new Map<string, { workMs: number; jobs: number }>();
  const hooks: JobLifecycleHook[] = [
    webhooks.hook,
    jobMetricsHook,
    heartbeat,
    held,
    ...(releaser ? [fairShareHook(fair!, releaser, entryWork)] : []),
  ];
  function createReleaser(fairQueues: FairQueues): FairReleaser {
    const em = orm.em.fork();
    return new FairReleaser({
      fair: fairQueues.share,
      redis,
      prefix: config.queuePrefix,
      shardKeys: () => [...fairQueues.queues.keys()],
      readReleasable: (jobs) => claimReleasableJobs(em, jobs),
      addToShard: (key, rows, held) => {
        const bundleOf = new Map(rows.map((row) => [row.id, row.bundleId ?? null]));
        // A bundle's data is not a job's: BullMQ stores either as JSON, and the worker tells them apart (isBundleData).
        const jobs = [...foldBundles(bulkJobsOf(rows), (job) => bundleOf.get(job.opts.jobId) ?? null), ...held];
        return fairQueues.queues.get(key)!.addBulk(jobs as ReturnType<typeof bulkJobsOf>);
      },
      pausedCustomers: () => paused.list(),
      logger,
    });
  }
  // A paused customer's set-aside job leaves its shard's window uncharged (as a job that did not run), so it
  // neither holds the window nor keeps its customer at the cap; on resume the API puts it back into its lane.
  const setAside = (job: Job<QueuedJobData>) => {
    if (!releaser || !fair?.queues.has(job.queueQualifiedName)) return;
    const data = job.data;
    // A bundle held whole holds the window under its own id; another bundle's members, each under theirs.
    if (isBundleData(data) && data.fairEntry)
      releaser.finished(job.queueQualifiedName, { id: job.id as string, customerId: data.customerId });
    else if (isBundleData(data))
      for (const member of data.members) releaser.finished(job.queueQualifiedName, { id: member.id, customerId: data.customerId });
    else tellReleaser(releaser, job, undefined);
  };
  // Bundles' members (queue/bundles.ts) run inside their bundle's BullMQ job: a cancel finds them here, and a
  // retry goes to BullMQ alone under the member's id.
  const bundles: BundleDeps = {
    running: new Map(),
    settled(bundle, stored) {
      const work = entryWork.get(bundle.id as string);
      entryWork.delete(bundle.id as string);
      if (!stored || !releaser || !bundle.data.fairEntry || !fair?.queues.has(bundle.queueQualifiedName)) return;
      // Charged its members' work (none ran — all cancelled, or handed off: its slot is freed uncharged), and
      // released before the bundle is handed back, so BullMQ's move to finished fetches what the freed slot let in.
      return releaser.finishedAndReleased(bundle.queueQualifiedName, {
        id: bundle.id as string,
        customerId: bundle.data.customerId,
        ...(work ? { workMs: work.workMs, jobs: work.jobs } : {}),
      });
    },
    async handOff(member) {
      await queues.forJob(member.type, member.id).add(
        member.type,
        {
          customerId: member.customerId,
          ...queuedPayload(member.payload),
          ...(member.hasWebhookUrl ? { hasWebhookUrl: true } : {}),
          priorAttempts: member.attempt,
        },
        { jobId: member.id, attempts: member.maxAttempts - member.attempt, delay: member.delayMs },
      );
    },
  };
  /** Each Worker's own connection (passed in, so BullMQ leaves it open on close: closed here). */
  const workerConnections: RedisClient[] = [];
  const workers = [...registry.values()].flatMap((definition) => {
    const processor = createProcessor(definition, {
      config,
      orm,
      redis,
      cache,
      substrates,
      runTask,
      writer,
      logger,
      hooks,
      paused,
      setAside,
      bundles,
    });
    const shards = queues.ofType(definition.name);
    const concurrency = shardConcurrency(definition.queue.concurrency ?? config.workerConcurrency, shards.length);
    return shards.map((queue) =>
      startWorker(queue.name, processor, concurrency + (fair?.queues.has(queue.qualifiedName) ? fairSpareSlots : 0)),
    );
  });
  function startWorker(name: string, processor: ReturnType<typeof createProcessor>, concurrency: number): Worker<QueuedJobData> {
    const connection = createRedis(config.redis, 'blocking');
    workerConnections.push(connection);
    const worker = new Worker<QueuedJobData>(name, processor, {
      connection,
      prefix: config.queuePrefix,
      concurrency,
      ...lockSettingsOf(config),
      ...retention,
    });
    worker.on('error', (error) => logger.error({ err: error, queue: name }, 'worker error'));
    held.watch(worker);
    worker.on('failed', (job, error) => {
      // A job that stalled more than maxStalledCount times is failed by BullMQ itself (the next worker to
      // take it fails it with "job stalled more than allowable limit" without calling our processor), so
      // record it here. `finishedOn` means BullMQ moved it to failed for good; its attemptsMade is then
      // usually below `attempts` (a stall is not a failed attempt), so that is no test. A failure our
      // processor already stored is final, and the writer never overwrites a final row.
      if (job?.finishedOn && isRowId(job.id)) {
        const written = writer.fail(job.id, error.message, job.attemptsMade);
        // Our processor's final failures are UnrecoverableErrors, already reported to the releaser; a
        // stalled-out job never reached it: free its slot (it did no measured work).
        if (releaser && fair?.queues.has(job.queueQualifiedName) && !(error instanceof UnrecoverableError))
          void written.then(() => tellReleaser(releaser, job, undefined));
        void written.catch((e) => logger.error({ err: e }, 'failed to record failure'));
      }
    });
    return worker;
  }

  const sweeper = new Sweeper(
    { orm, redis, queues, fair, prefix: config.queuePrefix, logger },
    {
      intervalMs: config.sweeperIntervalMs,
      trimIntervalMs: config.finishedJobTrimIntervalMs,
    },
  );
  sweeper.start();
  releaser?.start();
  const schedules = await runScheduleTicks({ config, orm, redis, queues, fair, logger, registry });

  await subscribe(
    subscriber,
    cancelChannel(config.queuePrefix),
    accessChangeChannel(config.queuePrefix),
    customerPauseChannel(config.queuePrefix),
  );
  subscriber.on('message', (channel, message) => {
    if (channel === accessChangeChannel(config.queuePrefix)) return webhooks.hook.forget(message);
    if (channel === customerPauseChannel(config.queuePrefix)) return paused.apply(message);
    for (const worker of workers) worker.cancelJob(message, 'cancelled by the user');
    bundles.running.get(message)?.abort(new Error('cancelled by the user'));
  });
  await heartbeat.start();
  const removePoolSource = addPoolSource('evaluation', {
    get utilization() {
      return pool.utilization;
    },
    // Tasks wait in the runner's per-customer queue; Piscina's own holds at most a replaced thread's.
    get queueSize() {
      return runTask.waiting + pool.queueSize;
    },
    get threads() {
      return pool.threads;
    },
    get completed() {
      return pool.completed;
    },
  });

  let closingStep: string | null = null;
  return {
    workers,
    writer,
    sweeper,
    releaser,
    pool,
    requestLog: schedules.requestLog,
    get closingStep() {
      return closingStep;
    },
    async close(deadlineMs = config.shutdownTimeoutMs) {
      const step = async <T>(name: string, work: () => Promise<T>, warnAfterMs = slowShutdownStepMs): Promise<T> => {
        closingStep = name;
        const slow = setTimeout(() => logger.warn({ step: name, warnAfterMs }, 'a shutdown step is still running'), warnAfterMs);
        slow.unref();
        try {
          return await work();
        } finally {
          clearTimeout(slow);
        }
      };
      await step('heartbeat', () => heartbeat.stop());
      paused.stop();
      await step('sweeper', () => sweeper.stop());
      await step('schedules', () => schedules.close());
      const report = await step(
        'job workers',
        () => closeWorkersWithin(workers, { held, writer, logger }, deadlineMs),
        deadlineMs + slowShutdownStepMs,
      );
      await step('state writes', () => writer.drain());
      await step('fair releaser', async () => releaser?.stop());
      await step('webhook delivery', () => webhooks.close());
      await step('cpu pool', () => pool.destroy());
      await step('queues', () => queues.close());
      // Our connections first; then BullMQ's own (a worker whose close outran the deadline). BullMQ's
      // disconnect waits for the client's 'end' event, which a cluster client whose nodes are already
      // gone never emits, so it is given a bound.
      for (const connection of workerConnections) connection.disconnect();
      await step('connections', () =>
        Promise.all([
          ...workers.map((worker) => Promise.race([worker.disconnect(), delay(2000)])),
          redis.quit(),
          subscriber.quit(),
          queueConnection.quit(),
        ]),
      );
      closingStep = null;
      removePoolSource();
      return report;
    },
  };
}

/** A job of a fair-shared shard finished: its shard's releaser charges it and releases what fits. */
function tellReleaser(releaser: FairReleaser, job: HookJob, workMs: number | undefined): void {
  releaser.finished(job.queueQualifiedName, {
    id: job.id as string,
    customerId: job.data.customerId,
    ...(workMs === undefined ? {} : { workMs }),
  });
}

/**
 * Tells the releaser about every final outcome (completed, failed for good) of a fair-shared shard's job,
 * after its state write, with its measured work (`fairChargeMs`: the pool's task time, or the processor's
 * wall time for a job that ran no pool task). A failed attempt BullMQ retries keeps its place in the window.
 */
function fairShareHook(
  fair: FairQueues,
  releaser: FairReleaser,
  /** Work of the bundles held whole running in this process, by bundle id (run-workers' `entryWork`). */
  entryWork: Map<string, { workMs: number; jobs: number }>,
): JobLifecycleHook {
  return {
    name: 'fair-share',
    finished(job, _type, outcome) {
      if (outcome.state === 'failed' && !outcome.final) return;
      if (!fair.queues.has(job.queueQualifiedName)) return;
      const carrier = job.carrier?.data as object | undefined;
      if (carrier && isBundleData(carrier) && carrier.fairEntry) {
        // A member of a bundle held whole: its bundle is charged for it once it has run.
        const id = job.carrier!.id as string;
        const work = entryWork.get(id) ?? { workMs: 0, jobs: 0 };
        work.workMs += fairChargeMs(outcome);
        work.jobs += 1;
        entryWork.set(id, work);
        return;
      }
      tellReleaser(releaser, job, fairChargeMs(outcome));
    },
  };
}
