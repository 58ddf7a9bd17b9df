import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { accountsDocs } from './openapi/accounts.openapi.js';
import { adminDocs } from './openapi/admin.openapi.js';
import { adminJobsDocs } from './openapi/admin-jobs.openapi.js';
import { adminJobViewsDocs } from './openapi/admin-job-views.openapi.js';
import { consoleSessionDocs } from './openapi/console-session.openapi.js';
import { batchesDocs } from './openapi/batches.openapi.js';
import { billingDocs, servicesDocs } from './openapi/billing.openapi.js';
import type { RouteDocs } from './openapi/document-route.js';
import { jobsDocs } from './openapi/jobs.openapi.js';
import { offboardingDocs } from './openapi/offboarding.openapi.js';
import { jobSearchDocs } from './openapi/job-search.openapi.js';
import { relationshipsDocs } from './openapi/relationships.openapi.js';
import { schedulesDocs } from './openapi/schedules.openapi.js';
import { substratesDocs } from './openapi/substrates.openapi.js';
import { metricsDocs, statsDocs, systemDocs } from './openapi/system.openapi.js';
import { webhooksDocs } from './openapi/webhooks.openapi.js';

/**
 * The routes of each `*.routes.ts` file, documented from the zod schemas that route validates with.
 * A new routes file adds its `xDocs` here; tests/openapi/coverage.test.ts fails while any route of the
 * app is missing from the document.
 */
export const routeDocs: readonly RouteDocs[] = [
  systemDocs,
  metricsDocs,
  statsDocs,
  accountsDocs,
  consoleSessionDocs,
  jobsDocs,
  jobSearchDocs,
  substratesDocs,
  batchesDocs,
  relationshipsDocs,
  schedulesDocs,
  webhooksDocs,
  billingDocs,
  servicesDocs,
  adminDocs,
  adminJobsDocs,
  adminJobViewsDocs,
  offboardingDocs,
];

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** Builds the OpenAPI 3.1 document for /api/v1. Pure: call once and keep it. */
export function buildOpenApiDocument(version = '0.1.0'): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'A JWT access token from POST /auth/login, or an API key (`sk_live_…`) from POST /api-keys',
  });
  registry.registerComponent('securitySchemes', 'consoleSession', {
    type: 'apiKey',
    in: 'cookie',
    name: 'chrysalis_session',
    description:
      'The console session of POST /auth/session. A request it authenticates that is not GET, HEAD or OPTIONS must send `X-Chrysalis-CSRF` and come from this origin, else 403.',
  });
  registry.registerComponent('securitySchemes', 'metricsToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The METRICS_TOKEN of the deployment (GET /metrics only)',
  });
  for (const docs of routeDocs) docs(registry);
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Chrysalis API',
      version,
      description: [
        'Submit jobs, poll them or stream their events, and manage substrates, schedules and webhooks.',
        'Errors are RFC 9457 `application/problem+json`. Lists are cursor-paginated (`?limit=` 1–100, `?cursor=`)',
        "and answer `{items, next_cursor}`. Another customer's resource answers 404, never 403.",
        'Rate limits: per customer and service by tier, reads (GET, HEAD) and writes on separate per-minute budgets',
        '(starter 1,000 reads and 100 writes, pro 10,000 and 1,000, enterprise unlimited); each answer carries',
        '`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` of the budget it spent and `RateLimit-Policy`',
        'naming both; a 429 adds `Retry-After`.',
        "Concurrency: a customer may have at most its tier's requests in flight at once (default starter 10, pro 50,",
        "enterprise 200) and its tier's event streams open (5, 50, 500), counted across every API process; past either",
        'a 429 with `Retry-After: 1`. A database or Redis that is saturated or unreachable answers 503 with `Retry-After`.',
        `A problem lists at most 100 field errors (one per unknown field); \`errors_total\` then counts them all.`,
      ].join(' '),
    },
    servers: [{ url: '/api/v1' }],
    security: [{ bearerAuth: [] }, { consoleSession: [] }],
  });
}
