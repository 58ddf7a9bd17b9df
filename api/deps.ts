import type { MikroORM } from '@mikro-orm/postgresql';
import type { RedisClient } from '../lib/redis.js';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { GroupCommit } from '../db/group-commit.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { FinishedJobRow } from '../db/jobs/insert-jobs.js';
import type { Admission } from '../queue/admission.js';
import type { JobQueues } from '../queue/queues.js';
import type { FairQueues } from '../queue/fair-share/fair-queues.js';
import type { ScheduleTickQueue } from '../queue/schedules/tick-queue.js';
import type { JobInserter } from '../queue/submit-job.js';
import type { PendingEnqueues } from '../queue/pending-enqueues.js';
import type { WebhookQueue } from '../queue/webhook-queue.js';
import type { PrincipalCache } from './auth/principal.js';
import type { JobWaiter } from './job-waiter.js';
import type { RequestLogRecorder } from '../db/request-log-recorder.js';
import type { LeaseSemaphores } from '../lib/lease-semaphore.js';
import type { RedisMemoryGuard } from '../lib/redis-memory-guard.js';
import type { SubstrateBatchChecker } from './substrate-batch/substrate-batch-checker.js';

/** Everything the HTTP edge talks to. Built by `api/main.ts` (or a test) and handed to `createApp`. */
export interface ApiDeps {
  config: Config;
  orm: MikroORM;
  redis: RedisClient;
  queues: JobQueues;
  /** Fair sharing of the sharded queues (submit admits, cancel withdraws); null when FAIR_SHARING is off. */
  fair: FairQueues | null;
  /** The internal webhook delivery queue (redeliveries are enqueued from the API). */
  webhookQueue: WebhookQueue;
  /** The internal queue whose job schedulers are the schedules' clocks (POST /schedules upserts them). */
  scheduleTicks: ScheduleTickQueue;
  logger: Logger;
  principals: PrincipalCache;
  cache: InvocationCache;
  /** Records jobs answered straight from the cache, many per INSERT. */
  finishedJobs: GroupCommit<FinishedJobRow>;
  /** Concurrent submits share one INSERT (group commit). */
  jobInserter: JobInserter;
  /** The adds of accepted jobs whose 202 went out first (cancel and shutdown wait for them). */
  pendingEnqueues: PendingEnqueues;
  waiter: JobWaiter;
  /** Admission control: per-customer caps of queued and running jobs, by tier, checked before every submit. */
  admission: Admission;
  /** Buffers request-log rows of authenticated calls and writes them in bulk (metering reads them). */
  requestLog: RequestLogRecorder;
  /** Per-customer concurrency limits shared by every API process (requests in flight, open event streams). */
  leases: LeaseSemaphores;
  /** Refuses new work while Redis is nearly full (REDIS_MEMORY_GUARD); sampled once a second. */
  memoryGuard: RedisMemoryGuard;
  /** Parses and checks `POST /substrates/batch` bodies in a worker thread, off the event loop. */
  batchChecker: SubstrateBatchChecker;
}
