import { z } from 'zod';
import { statsQuery } from '../routes/stats.routes.js';
import { documentRoute, ex, json, timestamp, type RouteDocs } from './document-route.js';

const checkSchema = z.object({ ok: z.boolean(), error: z.string().optional() });

/** system.routes.ts (liveness, readiness) and docs.routes.ts (this document and its UI). */
export const systemDocs: RouteDocs = (registry) => {
  const tag = 'System';
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/health',
    summary: 'Liveness',
    responses: {
      200: json(z.object({ status: z.literal('ok'), uptime_seconds: z.int() }), 'The process is up', undefined, {
        status: 'ok',
        uptime_seconds: 86_400,
      }),
    },
  });
  const readiness = z.object({ status: z.enum(['ready', 'not ready']), checks: z.record(z.string(), checkSchema) });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/ready',
    summary: 'Readiness: PostgreSQL and Redis reachable (and workers consuming, unless configured otherwise)',
    responses: {
      200: json(readiness, 'Ready', undefined, {
        status: 'ready',
        checks: { postgres: { ok: true }, redis: { ok: true }, workers: { ok: true } },
      }),
      503: json(readiness, 'Not ready; `checks` says what failed', undefined, {
        status: 'not ready',
        checks: { postgres: { ok: true }, redis: { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:6379' }, workers: { ok: true } },
      }),
    },
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/openapi.json',
    summary: 'This document (OpenAPI 3.1)',
    responses: {
      200: json(z.object({ openapi: z.string() }).passthrough(), 'The OpenAPI document', undefined, {
        openapi: '3.1.0',
        info: { title: 'Chrysalis API', version: '0.1.0' },
        paths: {},
      }),
    },
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/docs',
    summary: 'API reference UI for this document',
    responses: { 200: { description: 'HTML', content: { 'text/html': { schema: z.string() } } }, 301: { description: 'To /api/v1/docs/' } },
  });
};

/** metrics.routes.ts */
export const metricsDocs: RouteDocs = (registry) => {
  documentRoute(registry, {
    tag: 'System',
    auth: 'none',
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics of this API process',
    security: [{ metricsToken: [] }],
    responses: { 200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: z.string() } } } },
    problems: [401],
  });
};

const nullableRate = z.number().nullable();

/** stats.routes.ts */
export const statsDocs: RouteDocs = (registry) => {
  documentRoute(registry, {
    tag: 'System',
    auth: 'metered',
    method: 'get',
    path: '/stats',
    summary: "Figures for the caller's jobs over the last hour (everybody's for admins)",
    description:
      'The job figures are read at most once per 10 s per customer (and once for the admins) by each API process; `generated_at` says when. The HTTP figures are read at every call.',
    request: { query: statsQuery },
    responses: {
      200: json(
        z
          .object({
            scope: z.enum(['customer', 'global']),
            generated_at: timestamp,
            uptime_seconds: z.int(),
            window_seconds: z.int(),
            jobs: z.object({
              by_state: z.record(z.string(), z.int()),
              submitted: z.int(),
              submitted_per_minute: z.number(),
              completed: z.int(),
              failed: z.int(),
              error_rate: nullableRate,
              latency_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() }),
            }),
            http: z.record(z.string(), z.unknown()).describe('Requests of the last 5 minutes: requests_per_second, error_rate, latency_ms'),
            invocations: z.object({ total: z.int(), cached: z.int(), cache_hit_rate: nullableRate }),
            top_substrates: z.array(z.record(z.string(), z.unknown())),
          })
          .meta({
            id: 'Stats',
            example: {
              scope: 'customer',
              generated_at: ex.at,
              uptime_seconds: 86_400,
              window_seconds: 3600,
              jobs: {
                by_state: { queued: 3, active: 1, completed: 412, failed: 2 },
                submitted: 418,
                submitted_per_minute: 6.97,
                completed: 412,
                failed: 2,
                error_rate: 0.0048,
                latency_ms: { p50: 38, p95: 210, p99: 480 },
              },
              http: { requests_per_second: 2.4, error_rate: 0.01, latency_ms: { p50: 4, p95: 19, p99: 41 } },
              invocations: { total: 390, cached: 122, cache_hit_rate: 0.3128 },
              top_substrates: [{ substrate_id: ex.substrateId, invocations: 211 }],
            },
          }),
        'The figures',
      ),
    },
  });
};
