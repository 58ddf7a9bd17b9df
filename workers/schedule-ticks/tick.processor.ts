import type { MikroORM } from '@mikro-orm/postgresql';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { RateLimiterRes, type RateLimiterRedis } from 'rate-limiter-flexible';
import { customerLimitKey } from '../../queue/tier-budgets.js';
import { describeRefusal, type Admission } from '../../queue/admission.js';
import type { RequestLogRecorder } from '../../db/request-log-recorder.js';
import type { Tier } from '../../db/entities/service-instance.entity.js';
import { findScheduleRun, type ScheduleRun } from '../../db/repositories/schedules.js';
import type { JobRegistry } from '../../jobs/registry.js';
import type { JobQueues } from '../../queue/queues.js';
import type { FairQueues } from '../../queue/fair-share/fair-queues.js';
import { systemCustomerId } from '../../queue/schedules/platform-schedules.js';
import { submitJob, type SubmitJobInput } from '../../queue/submit-job.js';
import { removeScheduler } from '../../queue/schedules/user-schedulers.js';
import type { ScheduleTickData, ScheduleTickQueue } from '../../queue/schedules/tick-queue.js';

/** The service a customer's scheduled run counts against and is refused by: `compute`, like a call with a JWT. */
const serviceType = 'compute';
/** The request-log `method` of a scheduled run: metering counts it like any call, billing charges it. */
export const scheduledRunMethod = 'SCHEDULE';

export interface TickDeps {
  /** The job types runs may be of. */
  registry: JobRegistry;
  orm: MikroORM;
  queues: JobQueues;
  /** Fair sharing of the sharded queues; null when FAIR_SHARING is off. */
  fair: FairQueues | null;
  ticks: ScheduleTickQueue;
  logger: Logger;
  /** Where scheduled runs are recorded, as the API records calls (rows in bulk, off the tick's path). */
  requestLog: RequestLogRecorder;
  /** The tiers' write budgets (queue/tier-budgets.ts), shared with the API: a run takes a point from the customer's count. */
  tierLimiters: Map<Tier, RateLimiterRedis>;
  /** Admission control (queue/admission.ts): a run past the customer's cap of queued or running jobs is skipped, as the API answers 429. */
  admission?: Admission;
}

/** What a tick did (its BullMQ return value, seen in Bull Board). */
export type TickOutcome =
  | { submitted: string }
  | {
      skipped:
        | 'schedule-gone'
        | 'paused'
        | 'suspended'
        | 'rate-limited'
        | 'too-many-jobs'
        | 'substrate-missing'
        | 'invalid-payload'
        | 'already-submitted';
      detail?: string;
    };

/**
 * Turns each tick into a run submitted like `POST /jobs` (queue/submit-job.ts): the row first, with a
 * fresh UUIDv7 that is also its BullMQ id, and the schedule's name on it. A customer's run is checked like
 * an API call first: the schedule still exists and is not paused (else its scheduler goes), the compute
 * service is not suspended (402), the tier's per-minute budget has a point left and the customer is under its
 * caps of queued and running jobs (429); a refused run
 * creates no job and is recorded in the request log with that status, which metering does not count.
 * A submitted run is recorded with 202 and counted. The tick's own BullMQ id is the job's idempotency key,
 * so a tick retried after a failure never submits a second job.
 */
export function createTickProcessor(deps: TickDeps) {
  return (tick: Job<ScheduleTickData>): Promise<TickOutcome> =>
    tick.data.kind === 'platform'
      ? runPlatformSchedule(deps, tick, tick.data.type)
      : runCustomerSchedule(deps, tick, tick.data.customerId, tick.data.name);
}

/** The platform's own runs (metering, billing…): the system customer's ordinary jobs, never limited or billed. */
async function runPlatformSchedule(deps: TickDeps, tick: Job<ScheduleTickData>, type: string): Promise<TickOutcome> {
  const definition = deps.registry.get(type);
  if (!definition) throw new UnrecoverableError(`no job type "${type}"`);
  return submitRun(deps, tick, { customerId: systemCustomerId, definition, payload: {}, scheduleName: `platform:${type}` });
}

async function runCustomerSchedule(deps: TickDeps, tick: Job<ScheduleTickData>, customerId: string, name: string): Promise<TickOutcome> {
  const found = await findScheduleRun(deps.orm.em, customerId, name, serviceType);
  if (!found || found.schedule.paused) {
    // PostgreSQL is the record: a scheduler Redis kept for a deleted or paused schedule goes now.
    await removeScheduler(deps.ticks, { customerId, name });
    return { skipped: found ? 'paused' : 'schedule-gone' };
  }
  const { schedule } = found;
  const log = deps.logger.child({ customerId, schedule: name, tick: tick.id });
  const record = (statusCode: number) =>
    deps.requestLog.record({ timestamp: new Date(), customerId, serviceType, method: scheduledRunMethod, statusCode, bytesOut: 0 });

  const blocked = blockedReason(found.service);
  if (blocked) {
    record(402);
    log.info({ reason: blocked }, 'scheduled run skipped: the compute service is suspended');
    return { skipped: 'suspended', detail: blocked };
  }
  const limiter = found.service ? deps.tierLimiters.get(found.service.tier) : undefined;
  if (limiter && !(await takePoint(limiter, customerLimitKey(customerId, serviceType)))) {
    record(429);
    log.warn(
      { tier: found.service?.tier, perMinute: limiter.points },
      "scheduled run skipped: the customer's per-minute rate limit is spent",
    );
    return { skipped: 'rate-limited' };
  }
  const refusal = found.service ? await deps.admission?.admit(customerId, found.service.tier) : null;
  if (refusal) {
    record(429);
    log.warn({ cap: refusal.cap, limit: refusal.limit, count: refusal.count }, `scheduled run skipped: ${describeRefusal(refusal)}`);
    return { skipped: 'too-many-jobs', detail: describeRefusal(refusal) };
  }
  const definition = deps.registry.get(schedule.jobType);
  const payload = definition?.payload.safeParse(schedule.payload);
  if (!definition || !payload?.success) {
    // Checked at creation; only a job type that changed since can get here. Not the customer's call: not recorded.
    log.error({ jobType: schedule.jobType, problem: payload?.error?.message }, 'scheduled run skipped: the stored job no longer validates');
    return { skipped: 'invalid-payload' };
  }
  const outcome = await submitRun(deps, tick, {
    customerId,
    weight: deps.fair?.weightOf(found.service?.tier) ?? 1,
    definition,
    payload: payload.data,
    scheduleName: name,
    requireSubstrateId: substrateOf(payload.data),
  });
  if ('submitted' in outcome) record(202);
  else if (outcome.skipped === 'substrate-missing') {
    record(404);
    log.warn({ substrateId: substrateOf(payload.data) }, 'scheduled run skipped: its substrate was deleted');
  }
  return outcome;
}

async function submitRun(deps: TickDeps, tick: Job<ScheduleTickData>, input: Omit<SubmitJobInput, 'idempotencyKey'>): Promise<TickOutcome> {
  // Raw SQL only (no identity map), so the root entity manager serves without a fork, as in the API.
  const outcome = await submitJob(
    { em: deps.orm.em, queues: deps.queues, logger: deps.logger, fair: deps.fair },
    { ...input, idempotencyKey: tick.id ?? null },
  );
  if (outcome.kind === 'created') return { submitted: outcome.job.id };
  if (outcome.kind === 'substrate-missing') return { skipped: 'substrate-missing' };
  return { skipped: 'already-submitted', detail: outcome.job.id };
}

/** Why the service refuses calls, as the API decides it for a principal (api/auth/principal.ts): suspended, disabled or never enabled. */
function blockedReason(service: ScheduleRun['service']): string | null {
  if (!service) return 'service_disabled';
  return service.suspendedReason ?? (service.enabled ? null : 'service_disabled');
}

async function takePoint(limiter: RateLimiterRedis, key: string): Promise<boolean> {
  try {
    await limiter.consume(key);
    return true;
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return false;
    throw rejection;
  }
}

/** A job on one substrate (invoke, divide) is submitted only if the customer still owns it, as through POST /jobs. */
function substrateOf(payload: unknown): string | undefined {
  const id = (payload as { substrate_id?: unknown } | null)?.substrate_id;
  return typeof id === 'string' ? id : undefined;
}
