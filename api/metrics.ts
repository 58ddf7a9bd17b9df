import type { Queue } from 'bullmq';
import type { Request } from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { summarizeBacklog } from '../db/jobs/unfinished-counts.js';
import {
  httpRequestDuration,
  httpRequests,
  queueStates,
  recordCacheLookup,
  topBacklogCustomers,
  type CustomerJobCounts,
  type QueueDepth,
} from '../lib/metrics/catalog.js';
import { recentRequests } from './http-stats.js';
import type { RequestObserver } from './request-lifecycle.js';

/** The `route` label of requests no route answered (404s, and 401/429 from middleware before the route). */
export const unmatchedRoute = 'unmatched';

/**
 * Counts every answered request by method, route template and status, times it, and feeds `GET /stats`.
 *
 * The route template is read when the request has ended: `req.route.path` is the template of the route
 * that answered (`/jobs/:id`); its router's mount path is gone by then, but every router is mounted on
 * /api/v1 or on the root, so the URL tells which. Raw URLs never become labels, so ids cannot blow up
 * the series count.
 */
export const httpMetrics: RequestObserver = ({ req, res, durationMs, sent }) => {
  if (!sent) return;
  const path = (req.route as { path?: unknown } | undefined)?.path;
  const base = req.originalUrl.startsWith('/api/v1/') ? '/api/v1' : '';
  const template = typeof path === 'string' ? (base + path).replace(/(.)\/$/, '$1') : unmatchedRoute;
  const labels = { method: methodLabel(req), route: template, status: String(res.statusCode) };
  httpRequests.inc(labels);
  httpRequestDuration.observe(labels, durationMs / 1000);
  recentRequests.record(durationMs, res.statusCode, req.principal?.customerId ?? null);
};

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Clients may send any method token; anything unusual is one label value, not a new series each. */
const methodLabel = (req: Request): string => (knownMethods.has(req.method) ? req.method : 'OTHER');

/**
 * For the API's `InvocationCache.onLookup`. The API looks the cache up to answer a `Prefer: wait`
 * invocation at once; on a miss the job it submits tells its worker not to look again. A worker looks
 * (and counts) only when the API did not. So each invocation counts once, as a hit or a miss.
 */
export function countApiCacheLookup(hit: boolean): void {
  recordCacheLookup('invocation', hit);
}

/** What the depth reader needs of a BullMQ queue. */
type CountedQueue = Pick<Queue, 'getJobCounts'>;

/** The queues counted under one `queue` label: a job type's shards (`invoke`: `{invoke.0}` … `{invoke.15}`), or one internal queue. */
export interface CountedQueueGroup {
  label: string;
  queues: CountedQueue[];
}

/**
 * Reads every queue's job counts for the `chrysalis_queue_jobs` gauge, summed per group (a job type's
 * shards add up to one series: one `getJobCounts` script per queue, never one across queues), at most once per `maxAgeMs`
 * (default 5 s), so frequent scrapes by several Prometheus servers cost Redis one round of reads. A read
 * that takes over 2 s (Redis down: queue connections wait for it forever) leaves the queues out of that scrape.
 */
export function queueDepthReader(groups: Iterable<CountedQueueGroup>, maxAgeMs = 5000): () => Promise<QueueDepth[]> {
  const list = [...groups];
  let cached: { at: number; depths: Promise<QueueDepth[]> } | null = null;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > maxAgeMs) {
      const read = Promise.all(
        list.map(async ({ label, queues }) => ({
          queue: label,
          counts: sumCounts(await Promise.all(queues.map((queue) => queue.getJobCounts(...queueStates)))),
        })),
      );
      const depths = Promise.race([
        read,
        sleep(2000, undefined, { ref: false }).then(() => Promise.reject(new Error('queue depth read timed out'))),
      ]);
      cached = { at: now, depths };
      // A failed read is not kept: the next scrape tries again.
      depths.catch(() => {
        if (cached?.depths === depths) cached = null;
      });
    }
    return cached.depths;
  };
}

/**
 * Reads the per-customer gauge's figures (`chrysalis_customer_jobs`) from PostgreSQL — one grouped read of
 * the partial index of unfinished jobs, never per job — at most once per `maxAgeMs` (default 5 s): the top
 * customers by unfinished jobs, and `other` for the rest (always present, so the series set is stable).
 */
export function customerJobsReader(em: EntityManager, maxAgeMs = 5000): () => Promise<CustomerJobCounts[]> {
  let cached: { at: number; counts: Promise<CustomerJobCounts[]> } | null = null;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > maxAgeMs) {
      const counts = summarizeBacklog(em, topBacklogCustomers).then(({ top, other }) => [
        ...top.map((row) => ({ customer: row.customerId, queued: row.queued + row.delayed, active: row.active })),
        { customer: 'other', queued: other.queued + other.delayed, active: other.active },
      ]);
      cached = { at: now, counts };
      counts.catch(() => {
        if (cached?.counts === counts) cached = null;
      });
    }
    return cached.counts;
  };
}

function sumCounts(perQueue: Array<Record<string, number>>): QueueDepth['counts'] {
  const total: QueueDepth['counts'] = {};
  for (const counts of perQueue) for (const state of queueStates) total[state] = (total[state] ?? 0) + (counts[state] ?? 0);
  return total;
}
