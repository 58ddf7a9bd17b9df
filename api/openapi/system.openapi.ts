import { z } from 'zod';
import { statsQuery } from '../routes/stats.routes.js';
import { documentRoute, json, timestamp, type RouteDocs } from './document-route.js';

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
    responses: { 200: json(z.object({ status: z.literal('ok'), uptime_seconds: z.int() }), 'The process is up') },
  });
  const readiness = z.object({ status: z.enum(['ready', 'not ready']), checks: z.record(z.string(), checkSchema) });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/ready',
    summary: 'Readiness: PostgreSQL and Redis reachable (and workers consuming, unless configured otherwise)',
    responses: { 200: json(readiness, 'Ready'), 503: json(readiness, 'Not ready; `checks` says what failed') },
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/openapi.json',
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: json(z.object({ openapi: z.string() }).passthrough(), 'The OpenAPI document') },
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
    auth: 'account',
    method: 'get',
    path: '/stats',
    summary: "Figures for the caller's jobs over the last hour (everybody's for admins)",
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
          .meta({ id: 'Stats' }),
        'The figures',
      ),
    },
  });
};
