import type { EntityManager } from '@mikro-orm/postgresql';
import { jobStates } from '../db/entities/job-record.entity.js';
import { invocationFigures, jobCountsByState, jobWindowFigures, mostInvokedSubstrates } from '../db/jobs/job-stats.js';
import { recentRequests } from './http-stats.js';
import { sharedReadings } from './shared-readings.js';

/** Rates, latencies and invocation figures cover jobs created in the last hour. */
export const statsWindowSeconds = 3600;
/** HTTP figures cover the last five minutes of this API process. */
export const httpWindowSeconds = 300;

const ratio = (part: number, whole: number): number | null => (whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000);
const ms = (value: number | null): number | null => (value === null ? null : Math.round(value * 10) / 10);

/** The figures `GET /stats` reads from PostgreSQL, and when. */
interface JobFigures {
  readAt: Date;
  byState: Awaited<ReturnType<typeof jobCountsByState>>;
  window: Awaited<ReturnType<typeof jobWindowFigures>>;
  invocations: Awaited<ReturnType<typeof invocationFigures>>;
  topSubstrates: Awaited<ReturnType<typeof mostInvokedSubstrates>>;
}

async function readJobFigures(em: EntityManager, customerId: string | null): Promise<JobFigures> {
  const scope = { customerId, windowSeconds: statsWindowSeconds };
  const [byState, window, invocations, topSubstrates] = await Promise.all([
    jobCountsByState(em, scope),
    jobWindowFigures(em, scope),
    invocationFigures(em, scope),
    mostInvokedSubstrates(em, scope),
  ]);
  return { readAt: new Date(), byState, window, invocations, topSubstrates };
}

/** How long one reading of the job figures serves a customer's (or the admins') calls in an API process, in ms. */
export const jobFiguresReuseMs = 10_000;
/** The cache key of everybody's figures (an admin's call); customers' keys are their ids. */
const everybody = 'global';

/**
 * `GET /stats` for one API process: a reading of the job figures serves every call of its customer (or of the
 * admins) for `jobFiguresReuseMs`, one reading at a time, so a customer's calls cost the database one set of
 * queries per 10 s however many it makes. Over an hour's jobs the four queries took 35 ms (a starter's 6,000
 * jobs) to 221 ms (a pro's 60,000) of PostgreSQL a call, and the read budgets allow 1,000 to 10,000 calls a minute.
 * The HTTP figures are this process's memory, read at every call.
 */
export function createStats(em: EntityManager, reuseMs = jobFiguresReuseMs) {
  const readings = sharedReadings((key) => readJobFigures(em.fork(), key === everybody ? null : key), reuseMs);
  return async (customerId: string | null) => statsAnswer(await readings(customerId ?? everybody), customerId);
}

/**
 * `GET /stats`: a customer's own figures, or everybody's (`customerId` null, for admins). `generated_at`: when the
 * job figures were read (at most `jobFiguresReuseMs` ago).
 *
 * - `uptime_seconds`: how long this API process has run.
 * - `jobs.by_state`: queued, delayed and active jobs whenever submitted; completed, failed and cancelled
 *   jobs submitted within the window (`window_seconds`).
 * - `jobs.submitted`, `completed`, `failed`: jobs submitted within the window and how they ended so far;
 *   `submitted_per_minute` is the submit rate over the window; `error_rate` = failed ÷ (completed + failed);
 *   `latency_ms` = percentiles (p50/p95/p99) of finished_at − created_at (queueing plus run time,
 *   retries included) over those that completed or failed.
 * - `http`: requests this API process answered in the last five minutes (the caller's own, for a
 *   customer): `requests_per_second`, `error_rate` (share answered 5xx) and `latency_ms` percentiles
 *   of the time to answer. Prometheus (`chrysalis_http_*`) has the fleet-wide figures.
 * - `invocations`: `invoke` jobs submitted within the window; `cache_hit_rate` = answered from the
 *   cache ÷ completed plain invocations (operators such as `add` never use the cache).
 * - `top_substrates`: the ten substrates invoked most within the window.
 * Rates and ratios with nothing to divide by are null.
 */
function statsAnswer(figures: JobFigures, customerId: string | null) {
  const { byState, window, invocations, topSubstrates } = figures;
  return {
    scope: customerId === null ? 'global' : 'customer',
    generated_at: figures.readAt.toISOString(),
    uptime_seconds: Math.round(process.uptime()),
    window_seconds: statsWindowSeconds,
    jobs: {
      by_state: Object.fromEntries(jobStates.map((state) => [state, byState[state] ?? 0])),
      submitted: window.submitted,
      submitted_per_minute: Math.round((window.submitted / (statsWindowSeconds / 60)) * 1000) / 1000,
      completed: window.completed,
      failed: window.failed,
      error_rate: ratio(window.failed, window.completed + window.failed),
      latency_ms: { p50: ms(window.p50), p95: ms(window.p95), p99: ms(window.p99) },
    },
    http: recentRequests.summary({ windowMs: httpWindowSeconds * 1000, ...(customerId === null ? {} : { customerId }) }),
    invocations: {
      total: invocations.invocations,
      cached: invocations.cached,
      cache_hit_rate: ratio(invocations.cached, invocations.cacheable),
    },
    top_substrates: topSubstrates,
  };
}
