import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** HTML pages served by the API process: Bull Board and its login under /admin, the API reference under /api/v1/docs. */
const pagePrefixes = ['/admin', '/api/v1/docs'];
const isPage = (path: string): boolean => pagePrefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));

/**
 * helmet's headers, in one place. JSON routes get the strictest CSP there is (`default-src 'none'`:
 * a JSON answer never needs to load anything, so a response rendered as HTML by mistake cannot run
 * script) and may not be framed. The HTML pages keep helmet's other headers but no CSP here: Bull Board
 * and the API reference UI ship inline scripts and styles, so whoever mounts them sets the CSP they need.
 */
export function securityHeaders(): RequestHandler {
  const json = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    xFrameOptions: { action: 'deny' },
  });
  const pages = helmet({ contentSecurityPolicy: false });
  return (req, res, next) => (isPage(req.path) ? pages : json)(req, res, next);
}
