import { Router, type RequestHandler } from 'express';
import swaggerUi from 'swagger-ui-express';
import { buildOpenApiDocument } from '../openapi.js';

const documentUrl = '/api/v1/openapi.json';
const docsUrl = '/api/v1/docs/';

/**
 * Swagger UI loads its bundle, preset, init script and stylesheet from this origin (swagger-ui-dist,
 * served below) and styles elements inline; it fetches the document from here too. The online
 * validator badge is switched off, so nothing leaves the origin.
 */
export const docsCsp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

const withDocsCsp: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', docsCsp);
  next();
};

/** `GET /openapi.json` (the document, built and serialised once) and the reference UI at `GET /docs` (or `/docs/`). No authentication. */
export function docsRoutes(): Router {
  const router = Router();
  let documentJson: Buffer | undefined;
  const uiOptions = { swaggerUrl: documentUrl, customSiteTitle: 'Chrysalis API reference', swaggerOptions: { validatorUrl: null } };
  // The page loads its assets by relative URL (./swagger-ui.css): a base URL makes them resolve under /docs/
  // whether the page was asked for as /docs or /docs/ (no redirect for a client that does not follow one).
  const page = swaggerUi.generateHTML(undefined, uiOptions).replace('<head>', `<head>\n  <base href="${docsUrl}">`);

  router.get('/openapi.json', (_req, res) => {
    // Serialised once as well: 286 KB of JSON took ~3.4 ms of the event loop per request, and anyone may ask.
    documentJson ??= Buffer.from(JSON.stringify(buildOpenApiDocument()));
    res.type('application/json').send(documentJson);
  });

  router.get('/docs', withDocsCsp, (_req, res) => {
    res.type('html').send(page);
  });
  router.use('/docs', withDocsCsp, ...swaggerUi.serveFiles(undefined, uiOptions));

  return router;
}
