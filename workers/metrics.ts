import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { jobAttempts, jobDuration, recordCacheLookup, type JobAttemptOutcome } from '../lib/metrics/catalog.js';
import { bearerMatches, renderMetrics } from '../lib/metrics/exposition.js';
import type { JobLifecycleHook } from './lifecycle.js';

/** Job attempts by type and outcome, and their durations. (Jobs running now: `chrysalis_queue_jobs{state="active"}`.) */
export const jobMetricsHook: JobLifecycleHook = {
  name: 'metrics',
  finished(_job, type, outcome) {
    const result: JobAttemptOutcome = outcome.state === 'completed' ? 'completed' : outcome.final ? 'failed' : 'retried';
    jobAttempts.inc({ type, outcome: result });
    jobDuration.observe({ type, outcome: result }, outcome.durationMs / 1000);
  },
};

/** For the workers' `InvocationCache.onLookup`: counts invocation-cache hits and misses. */
export function countInvocationCacheLookup(hit: boolean): void {
  recordCacheLookup('invocation', hit);
}

export interface WorkerMetricsServerOptions {
  /** Port to listen on; 0 picks a free one (tests). The worker's entry point skips the server when WORKER_METRICS_PORT is 0. */
  port: number;
  /** Bearer token Prometheus must send (METRICS_TOKEN, as for the API's /metrics). */
  token: string;
  logger: Logger;
  /** Interface to bind. Default all interfaces (Prometheus scrapes it from another container). */
  host?: string;
}

/**
 * A worker process has no HTTP API, so it serves its own series (jobs, pools, cache, webhooks, billing,
 * process) on a small port of its own: Prometheus scrapes every worker replica directly, which keeps
 * per-process series such as pool utilisation apart without pushing through Redis.
 */
export async function serveWorkerMetrics(options: WorkerMetricsServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (!bearerMatches(req.headers.authorization, options.token)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('unauthorized\n');
      return;
    }
    renderMetrics().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body),
      (error: unknown) => {
        options.logger.error({ err: error }, 'rendering metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  server.listen(options.port, options.host);
  await once(server, 'listening');
  return server;
}
