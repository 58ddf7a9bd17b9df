import express, { type Express, type RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { pinoHttp } from 'pino-http';
import { adminPagesRoutes } from './admin/admin-pages.routes.js';
import { authenticate, requireActiveService } from './auth/authenticate.js';
import type { ApiDeps } from './deps.js';
import { httpMetrics } from './metrics.js';
import { errorHandler, notFoundHandler } from './problems.js';
import { createRateLimits } from './rate-limits.js';
import { batchesRoutes } from './routes/batches.routes.js';
import { docsRoutes } from './routes/docs.routes.js';
import { jobEventsRoutes } from './routes/job-events.routes.js';
import { jobsRoutes } from './routes/jobs.routes.js';
import { metricsRoutes } from './routes/metrics.routes.js';
import { relationshipsRoutes } from './routes/relationships.routes.js';
import { schedulesRoutes } from './routes/schedules.routes.js';
import { statsRoutes } from './routes/stats.routes.js';
import { substratesRoutes } from './routes/substrates.routes.js';
import { systemRoutes } from './routes/system.routes.js';
import { webhooksRoutes } from './routes/webhooks.routes.js';
import { adminRoutes } from './routes/admin.routes.js';
import { billingRoutes } from './routes/billing.routes.js';
import { servicesRoutes } from './routes/services.routes.js';
import { accountRoutes, publicAccountRoutes } from './routes/accounts.routes.js';
import { securityHeaders } from './security-headers.js';

/** Routes that take bodies up to 16 MiB; everything else stops at 1 MiB (413). */
const largeBodyRoutes = new Set(['/api/v1/batches', '/api/v1/substrates/batch', '/api/v1/admin/usage/ingest']);
const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/;

function jsonBodies(): RequestHandler {
  const small = express.json({ limit: '1mb', strict: false });
  const large = express.json({ limit: '16mb', strict: false });
  return (req, res, next) => (largeBodyRoutes.has(req.path) ? large : small)(req, res, next);
}

/** The Express app, apart from `listen`, so tests can run it on port 0. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.trustProxy);
  app.set('query parser', 'simple');

  app.use(httpMetrics());
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && requestIdPattern.test(incoming) ? incoming : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      autoLogging: { ignore: (req) => req.url === '/api/v1/health' || req.url === '/api/v1/ready' },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug'),
    }),
  );
  app.use(securityHeaders());
  app.use(jsonBodies());

  const v1 = express.Router();
  v1.use(deps.requestLog.middleware);
  v1.use(systemRoutes(deps));
  v1.use(docsRoutes());
  v1.use(metricsRoutes(deps));
  const rateLimits = createRateLimits(deps.redis, deps.config);
  v1.post('/auth/register', rateLimits.register);
  v1.post('/auth/login', rateLimits.login);
  v1.use(publicAccountRoutes(deps));

  const auth = authenticate({ jwtSecret: deps.config.jwtSecret, tosVersion: deps.config.tosVersion, principals: deps.principals });
  const authWithoutTos = authenticate({ jwtSecret: deps.config.jwtSecret, tosVersion: deps.config.tosVersion, principals: deps.principals, allowWithoutTos: true });
  v1.use(accountRoutes(deps, { auth, authWithoutTos }));
  v1.use(statsRoutes(deps, auth));

  const metered = express.Router();
  metered.use(auth);
  // Billing, services and the admin back office answer while a customer's services are suspended: paying is how a suspension ends.
  metered.use(['/billing', '/services'], rateLimits.customer);
  metered.use(billingRoutes(deps), servicesRoutes(deps), adminRoutes(deps));
  metered.use(requireActiveService, rateLimits.customer);
  metered.use(jobsRoutes(deps));
  metered.use(jobEventsRoutes(deps));
  metered.use(substratesRoutes(deps));
  metered.use(relationshipsRoutes(deps));
  metered.use(batchesRoutes(deps));
  metered.use(webhooksRoutes(deps));
  metered.use(schedulesRoutes(deps));
  v1.use(metered);

  // Operator pages (login, Bull Board) live outside /api/v1 and authenticate by session cookie.
  app.use(adminPagesRoutes(deps, { queues: [...deps.queues.values(), deps.webhookQueue] }));
  app.use('/api/v1', v1);
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
