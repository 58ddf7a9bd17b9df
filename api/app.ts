import express, { type Express, type RequestHandler } from 'express';
import { adminPagesRoutes } from './admin/admin-pages.routes.js';
import { consoleRoutes } from './console/console.routes.js';
import { accessLog, installRequestLogger } from './request-logging.js';
import { requestLifecycle } from './request-lifecycle.js';
import { requestLogObserver } from './request-log-observer.js';
import { assertActiveService, authenticate, principalOf } from './auth/authenticate.js';
import type { ApiDeps } from './deps.js';
import { httpMetrics } from './metrics.js';
import { refuseBodyUnlessJson } from './json-content-type.js';
import { anonymousJsonBody, JsonBytes, jsonTextBody } from './json-text-body.js';
import { refuseInvalidUtf8 } from './json-body.js';
import { authenticateEarly, authenticateUnlessEarly, earlyRefusalOf } from './auth/early-authentication.js';
import { errorHandler, notFoundHandler } from './problems.js';
import { createRateLimits, type RateLimits } from './rate-limits.js';
import { bulkWrites, customerLimits, inFlightLimit } from './concurrency-limits.js';
import { CustomerReadGate, customerReadGate } from './customer-read-gate.js';
import { batchesRoutes } from './routes/batches.routes.js';
import { docsRoutes } from './routes/docs.routes.js';
import { jobEventsRoutes } from './routes/job-events.routes.js';
import { jobsRoutes } from './routes/jobs.routes.js';
import { jobSearchRoutes } from './routes/job-search.routes.js';
import { metricsRoutes } from './routes/metrics.routes.js';
import { relationshipsRoutes } from './routes/relationships.routes.js';
import { schedulesRoutes } from './routes/schedules.routes.js';
import { statsRoutes } from './routes/stats.routes.js';
import { startInvokeCacheLookup, substratesRoutes } from './routes/substrates.routes.js';
import { systemRoutes } from './routes/system.routes.js';
import { jobDeliveriesRoutes, webhooksRoutes } from './routes/webhooks.routes.js';
import { adminRoutes } from './routes/admin.routes.js';
import { adminJobsRoutes } from './routes/admin-jobs.routes.js';
import { adminJobViewsRoutes } from './routes/admin-job-views.routes.js';
import { offboardingRoutes } from './routes/offboarding.routes.js';
import { billingRoutes } from './routes/billing.routes.js';
import { servicesRoutes } from './routes/services.routes.js';
import { accountRoutes, publicAccountRoutes } from './routes/accounts.routes.js';
import { consoleSessionRoutes } from './routes/console-session.routes.js';
import { ConsoleSessions } from './auth/console-sessions.js';
import { securityHeaders } from './security-headers.js';
import { inputGuard } from './input-guard.js';
import { requireHost } from './http-server.js';
import { requestTiming } from './request-timing.js';
import { continueInSlices, LoopSlices, sliced } from './loop-slices.js';
import { chain } from './middleware-chain.js';

/** Routes that take bodies up to 16 MiB; everything else stops at 1 MiB (413). */
const largeBodyRoutes = new Set(['/api/v1/batches', '/api/v1/jobs/bulk', '/api/v1/substrates/batch', '/api/v1/admin/usage/ingest']);
/**
 * Routes whose POST bodies (up to 16 MiB) are parsed and checked by their route, off the event loop in the
 * batch checker's thread (api/substrate-batch/): the body stage leaves them bytes (JsonBytes), and the input
 * guard leaves their body to the route. A 15 MB `POST /batches` parsed and checked here had held the loop
 * ~300 ms, and every other customer's request with it.
 */
const textBodyRoutes = new Set(['/api/v1/substrates/batch', '/api/v1/batches', '/api/v1/jobs/bulk']);
/** Routes whose bodies' fields are named `jobs[3].payload.x` (SPEC §9's bulk submit), not `body.jobs.3.payload.x`. */
const bracketedBodyRoutes = new Set(['/api/v1/jobs/bulk']);
/** The one /api/v1 route whose body is not JSON (NDJSON; the route checks its own type). */
const nonJsonRoutes = new Set(['/api/v1/admin/usage/ingest']);
/** SPEC §9: a JSON route answers 415 to any other type, a structured `+json` one (RFC 6839) included. */
const jsonTypes = ['application/json'];

/**
 * Parses JSON bodies, and refuses with 415 a non-empty body under /api/v1 that is not declared JSON: left
 * unparsed it would reach the route as no body at all (a form-encoded invoke ran without its parameters).
 * The admin pages outside /api/v1 keep their form.
 *
 * A large-body route's request is authenticated first (`authenticateEarly`, refusing nothing yet): a
 * customer's body is parsed as before (or, for a POST to `textBodyRoutes`, left as bytes for its route), but
 * a body sent without valid credentials, which only ever gets its 400, 413, 415 or 401, is never parsed on
 * the event loop: `anonymousJsonBody` reads it and checks its syntax in the batch checker's thread, one
 * such body at a time per API process (`anonymousChecks`), and past that answers the 401 unread.
 */
function jsonBodies(deps: ApiDeps, authenticateStep: RequestHandler, bulkWriteLimits: RequestHandler): RequestHandler {
  const small = express.json({ limit: '1mb', strict: false, type: jsonTypes, verify: refuseInvalidUtf8 });
  const large = chain(express.json({ limit: '16mb', strict: false, type: jsonTypes, verify: refuseInvalidUtf8 }));
  // Chained, so that what they throw reaches `next` when they run in a callback (after the bulk-write limits).
  const text = chain(jsonTextBody({ limit: '16mb', type: jsonTypes }));
  const anonymous = anonymousJsonBody({ limit: '16mb', type: jsonTypes, anonymousCheck: () => deps.batchChecker.anonymousCheck() });
  const early = authenticateEarly(authenticateStep);
  return (req, res, next) => {
    const path = req.path; // a getter that parses the URL: read it once
    if (path.startsWith('/api/v1/') && !nonJsonRoutes.has(path)) refuseBodyUnlessJson(req);
    if (!largeBodyRoutes.has(path)) return small(req, res, next);
    return early(req, res, (error?: unknown) => {
      if (error) return next(error);
      if (earlyRefusalOf(req) !== null) return anonymous(req, res, next);
      const read = req.method === 'POST' && textBodyRoutes.has(path) ? text : large;
      if (req.method !== 'POST' || !bulkWrites.has(path)) return read(req, res, next);
      bulkWriteLimits(req, res, (refused?: unknown) => (refused ? next(refused) : read(req, res, next)));
    });
  };
}

/**
 * Hands a request to `router` only when its path is under one of `prefixes`, so a request walks the
 * layers of its own router and not of every router mounted before it. `stack` stays visible to
 * route walkers (the OpenAPI coverage test).
 */
function under(prefixes: string[], router: RequestHandler & { stack: unknown[] }): RequestHandler & { stack: unknown[] } {
  const below = prefixes.map((prefix) => `${prefix}/`);
  const gate: RequestHandler = (req, res, next) => {
    const path = req.path; // a getter that parses the URL: read it once
    for (let i = 0; i < prefixes.length; i++) {
      if (path === prefixes[i] || path.startsWith(below[i]!)) return router(req, res, next);
    }
    next();
  };
  return Object.assign(gate, { stack: router.stack });
}

/**
 * The input guard (api/input-guard.ts), which leaves a body read as bytes (a POST to `textBodyRoutes`) to its
 * route, and checks any other body, on those paths too.
 */
function guardInput(): RequestHandler {
  const guard = inputGuard({ bracketedBodyRoutes });
  const queryGuard = inputGuard({ bodyCheckedByRoute: textBodyRoutes, bracketedBodyRoutes });
  return (req, res, next) => (req.body instanceof JsonBytes ? queryGuard : guard)(req, res, next);
}

/** Prefixes of the routes that count against a customer's service (authenticated, metered, rate-limited). */
const meteredPrefixes = [
  '/substrates',
  '/jobs',
  '/batches',
  '/relationships',
  '/webhooks',
  '/schedules',
  '/billing',
  '/services',
  '/admin',
];

/** Refuses with 402 a caller whose service is suspended or disabled (`assertActiveService`). */
const activeService: RequestHandler = (req, _res, next) => {
  assertActiveService(principalOf(req));
  next();
};

/** Answered at once, never queued behind other requests' slices: what a load balancer and a probe ask. */
const systemProbePaths = new Set(['/api/v1/health', '/api/v1/ready']);

/** The Express app, apart from `listen`, so tests can run it on port 0. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // Answers are dynamic JSON that no client revalidates; an ETag would cost a SHA-1 of every body.
  app.set('etag', false);
  app.set('trust proxy', deps.config.trustProxy);
  app.set('query parser', 'simple');
  installRequestLogger(app.request, deps.logger);

  const { start: startTiming, timedStage } = requestTiming(deps.config.serverTiming);
  const slices = new LoopSlices(deps.config.apiSliceMs);
  const rateLimits = createRateLimits(deps.redis, deps.config);
  // The console's sign-in sessions: every authenticated route takes their cookie in place of a bearer token.
  const sessions = new ConsoleSessions(deps.redis, deps.config.queuePrefix, { secureCookie: deps.config.nodeEnv === 'production' });
  const authenticateStep = authenticate({
    jwtSecret: deps.config.jwtSecret,
    tosVersion: deps.config.tosVersion,
    principals: deps.principals,
    sessions,
    keyLookup: rateLimits.keyLookup,
  });
  // A large-body route's request was authenticated before its body was read (jsonBodies): its outcome stands.
  const auth = timedStage('auth', authenticateUnlessEarly(authenticateStep));
  const authWithoutTos = authenticate({
    jwtSecret: deps.config.jwtSecret,
    tosVersion: deps.config.tosVersion,
    principals: deps.principals,
    allowWithoutTos: true,
    sessions,
    keyLookup: rateLimits.keyLookup,
  });

  const inFlightAndRateLimit = timedStage(
    'limits',
    sliced(slices, customerLimits(deps.leases, rateLimits, deps.config), (req) => req.principal?.customerId ?? ''),
  );
  /** A metered request's service check and limits: before its body is read for a bulk write, else in the metered routes. */
  const activeAndLimited: RequestHandler = (req, res, next) => {
    assertActiveService(principalOf(req));
    // Sent with the limits' script, not after it: one Redis round trip for both.
    startInvokeCacheLookup(deps, req);
    return inFlightAndRateLimit(req, res, next);
  };
  // A bulk write (up to 16 MiB) is refused by its customer's limits before its body is read: an attacker's
  // bodies past its cap of two at once (issue 15: 500 × 10 MB in 40 s) were each read and copied, then refused.
  const limitedBeforeBody = new WeakSet<object>();
  const limitsBeforeBody = chain((req, res, next) => {
    limitedBeforeBody.add(req);
    return activeAndLimited(req, res, next);
  });
  const meteredLimits: RequestHandler = (req, res, next) => (limitedBeforeBody.has(req) ? next() : activeAndLimited(req, res, next));

  const requestLog = requestLogObserver(deps.requestLog, {
    jwtSecret: deps.config.jwtSecret,
    principals: deps.principals,
    keyLookupAllowed: rateLimits.keyLookupAllowed,
  });
  // What every request passes first, as one router layer (chain).
  app.use(
    chain(
      ...(startTiming ? [startTiming] : []),
      // Before anything else is spent on a request, so a burst is parsed and queued and little more in one go.
      continueInSlices(slices, (req) => systemProbePaths.has(req.path)),
      timedStage('lifecycle', requestLifecycle([httpMetrics, accessLog(deps.logger), requestLog])),
      requireHost,
      timedStage('headers', securityHeaders()),
      timedStage('body', jsonBodies(deps, authenticateStep, limitsBeforeBody)),
      timedStage('guard', guardInput()),
    ),
  );

  // First, as they carry nearly all the traffic; no public route below shares their prefixes. Mounted on the
  // app itself rather than inside `v1`, so a metered request enters one router fewer.
  app.use('/api/v1', under(meteredPrefixes, meteredRoutes(deps, auth, rateLimits, inFlightAndRateLimit, meteredLimits)));
  const v1 = express.Router();
  v1.use(under(['/health', '/ready'], systemRoutes(deps)));
  v1.use(under(['/openapi.json', '/docs'], docsRoutes()));
  v1.use(under(['/metrics'], metricsRoutes(deps)));
  v1.post('/auth/register', rateLimits.register);
  v1.post('/auth/login', rateLimits.login);
  // The console's sign-in shares the login's per-IP count.
  v1.post('/auth/session', rateLimits.login);
  // Refresh and logout share one per-IP count: neither needs an access token, and each is a PostgreSQL transaction.
  v1.post(['/auth/refresh', '/auth/logout'], rateLimits.refresh);
  v1.use(under(['/auth/session'], consoleSessionRoutes(deps, sessions)));
  v1.use(under(['/auth', '/tos'], publicAccountRoutes(deps)));
  // Every authenticated route counts against the caller's budget, not only the metered ones.
  const limited = (authenticateStep: RequestHandler) => [authenticateStep, rateLimits.customer];
  // The account routes (who am I, terms, API keys) answer while the caller's service is suspended, as billing does:
  // the console needs them to let a suspended customer pay. /stats is a call like the metered ones: it answers 402
  // (SPEC §5), checked before the rate limit, so a refused call spends no budget.
  v1.use(under(['/auth', '/tos', '/api-keys'], accountRoutes(deps, { auth: limited(auth), authWithoutTos: limited(authWithoutTos) })));
  v1.use(under(['/stats'], statsRoutes(deps, [auth, activeService, rateLimits.customer])));

  app.use('/api/v1', v1);
  // Operator pages (login, Bull Board) live outside /api/v1 and authenticate by session cookie.
  app.use(under(['/admin'], adminPagesRoutes(deps, { queues: [...deps.queues.all(), deps.webhookQueue, deps.scheduleTicks] })));
  // The customer and operator console: static pages that call /api/v1 with the session cookie of POST /api/v1/auth/session.
  app.use(under(['/console'], consoleRoutes()));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

/**
 * The routes that count against a customer's service: authenticated; billing, services and the admin
 * back office answer while the service is suspended (paying is how a suspension ends), the rest only
 * while it is active; all but an administrator's admin calls are rate-limited by tier. The busiest routers come first.
 */
function meteredRoutes(
  deps: ApiDeps,
  auth: RequestHandler,
  rateLimits: RateLimits,
  inFlightAndRateLimit: RequestHandler,
  meteredLimits: RequestHandler,
): RequestHandler & { stack: unknown[] } {
  const inFlight = inFlightLimit(deps.leases, deps.config);
  const account = express.Router();
  account.use(['/billing', '/services'], inFlightAndRateLimit);
  // An operator's back office (bulk retries, usage ingest) is held to in-flight limits only; anyone else's call
  // there is refused (403) but still spends its budget, so it cannot hammer the API unmetered.
  account.use('/admin', (req, res, next) =>
    req.principal?.role === 'admin' ? inFlight(req, res, next) : inFlightAndRateLimit(req, res, next),
  );
  account.use(
    under(['/billing'], billingRoutes(deps)),
    under(['/services'], servicesRoutes(deps)),
    under(['/admin'], adminRoutes(deps)),
    under(['/admin'], adminJobsRoutes(deps)),
    // After adminJobsRoutes: its /admin/jobs/failure-groups is not a job id.
    under(['/admin'], adminJobViewsRoutes(deps)),
    under(['/admin'], offboardingRoutes(deps)),
  );

  // One router layer for all of it (chain): each layer a request steps through costs it.
  return chain(
    auth,
    under(['/billing', '/services', '/admin'], account),
    meteredLimits,
    customerReadGate(new CustomerReadGate(deps.config.apiReadsAtOnce, deps.config.apiReadsPerCustomer)),
    under(['/substrates'], substratesRoutes(deps)),
    under(['/jobs'], jobsRoutes(deps, rateLimits)),
    under(['/jobs'], jobSearchRoutes(deps, rateLimits)),
    under(['/jobs'], jobEventsRoutes(deps)),
    under(['/jobs'], jobDeliveriesRoutes(deps)),
    under(['/batches'], batchesRoutes(deps, rateLimits)),
    under(['/relationships'], relationshipsRoutes(deps)),
    under(['/webhooks'], webhooksRoutes(deps)),
    under(['/schedules'], schedulesRoutes(deps)),
  );
}
