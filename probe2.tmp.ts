import autocannon from 'autocannon';
import express from 'express';
import { pino } from 'pino';
import { pinoHttp } from 'pino-http';
import helmet from 'helmet';
import { httpMetrics } from './api/metrics.js';
import { securityHeaders } from './api/security-headers.js';
const logger = pino({ level: 'warn' });
const variants: Record<string, (app: express.Express) => void> = {
  bare: () => {},
  pinoHttp: (app) => app.use(pinoHttp({ logger, customLogLevel: () => 'debug' })),
  helmet: (app) => app.use(helmet()),
  securityHeaders: (app) => app.use(securityHeaders()),
  httpMetrics: (app) => app.use(httpMetrics()),
  json: (app) => app.use(express.json()),
};
for (const [name, setup] of Object.entries(variants)) {
  const app = express();
  setup(app);
  app.get('/x', (_req, res) => { res.json({ ok: true }); });
  const server = app.listen(0);
  const port = (server.address() as { port: number }).port;
  const r = await autocannon({ url: `http://127.0.0.1:${port}/x`, connections: 32, duration: 3 });
  console.log(name.padEnd(16), Math.round(r.requests.average));
  server.close();
}
