import { fileURLToPath } from 'node:url';
import express, { Router, type RequestHandler } from 'express';

/** The pages and their assets, beside this file (the build copies the folder to dist/api/console/static). */
const staticDir = fileURLToPath(new URL('./static', import.meta.url));

/**
 * The console's CSP: its own scripts, styles and API calls, nothing inline and nothing from elsewhere.
 * It replaces the JSON routes' `default-src 'none'` that securityHeaders sets on every path outside
 * /admin and the API reference; the other security headers stay as set there.
 */
export const consoleCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Page paths (under /console) and the HTML file that renders each; the page's module reads its ids from the URL. */
const pages: Array<[string, string]> = [
  ['/', 'sign-in.html'],
  ['/jobs', 'jobs.html'],
  ['/jobs/:id', 'job.html'],
  ['/batches', 'batches.html'],
  ['/batches/:id', 'batch.html'],
  ['/api-keys', 'api-keys.html'],
  ['/usage', 'usage.html'],
  ['/schedules', 'schedules.html'],
  ['/webhooks', 'webhooks.html'],
  ['/webhooks/:id', 'webhook.html'],
  ['/admin', 'admin.html'],
  ['/admin/failures', 'admin-failures.html'],
  ['/admin/customers', 'admin-customers.html'],
];

const withConsoleCsp: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', consoleCsp);
  next();
};

/**
 * `/console`: static pages, each a plain HTML file with one ES module that calls the JSON API, which
 * the session cookie of POST /api/v1/auth/session authenticates (scoped to /api/v1, so the pages
 * themselves never receive it). The pages hold no data: every figure comes from the API, which enforces
 * tenancy, so a page of another customer's job shows the API's 404.
 */
export function consoleRoutes(): Router {
  const router = Router();
  router.use('/console', withConsoleCsp);
  router.use('/console/assets', express.static(staticDir, { index: false, maxAge: 0 }));
  for (const [path, file] of pages) {
    router.get(path === '/' ? '/console' : `/console${path}`, (_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.sendFile(file, { root: staticDir });
    });
  }
  return router;
}
