import type { Queue } from 'bullmq';
import type { Request, RequestHandler } from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequestDuration, httpRequests, queueStates, recordCacheLookup, type QueueDepth } from '../ops/metrics/catalog.js';
import { recentRequests } from './http-stats.js';

/** The `route` label of requests no route answered (404s, and 401/429 from middleware before the route). */
export const unmatchedRoute = 'unmatched';

/**
 * Counts every request by method, route template and status, times it, and feeds `GET /stats`.
 * Mount it first, so the time includes every other middleware.
 *
 * The route template is captured when the router dispatches to a route: at that moment `req.baseUrl` is
 * the mount path of the router that holds it (`/api/v1`) and `req.route.path` its template (`/jobs/:id`).
 * Reading them later is wrong, since routers restore `req.baseUrl` when an error leaves them. Raw URLs
 * never become labels, so ids cannot blow up the series count.
 */
export function httpMetrics(): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.once('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      // The route that answered stays on the request once it has run. Its router's base URL is gone
      // again if the route threw (the router restores it on the way out); every router is mounted on
      // /api/v1 or on the root, so the URL tells which.
      const path = (req.route as { path?: unknown } | undefined)?.path;
      const base = req.baseUrl || (req.originalUrl.startsWith('/api/v1/') ? '/api/v1' : '');
      const template = typeof path === 'string' ? (base + path).replace(/(.)\/$/, '$1') : null;
      const labels = { method: methodLabel(req), route: template ?? unmatchedRoute, status: String(res.statusCode) };
      httpRequests.inc(labels);
      httpRequestDuration.observe(labels, seconds);
      recentRequests.record(seconds * 1000, res.statusCode, req.principal?.customerId ?? null);
    });
    next();
  };
}

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
type CountedQueue = Pick<Queue, 'name' | 'getJobCounts'>;

/**
 * Reads every queue's job counts for the `chrysalis_queue_jobs` gauge, at most once per `maxAgeMs`
 * (default 5 s), so frequent scrapes by several Prometheus servers cost Redis one round of reads. A read
 * that takes over 2 s (Redis down: queue connections wait for it forever) leaves the queues out of that scrape.
 */
export function queueDepthReader(queues: Iterable<CountedQueue>, maxAgeMs = 5000): () => Promise<QueueDepth[]> {
  const list = [...queues];
  let cached: { at: number; depths: Promise<QueueDepth[]> } | null = null;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > maxAgeMs) {
      const read = Promise.all(list.map(async (queue) => ({ queue: queue.name, counts: await queue.getJobCounts(...queueStates) })));
      const depths = Promise.race([read, sleep(2000, undefined, { ref: false }).then(() => Promise.reject(new Error('queue depth read timed out')))]);
      cached = { at: now, depths };
      // A failed read is not kept: the next scrape tries again.
      depths.catch(() => {
        if (cached?.depths === depths) cached = null;
      });
    }
    return cached.depths;
  };
}
