import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** HTML pages served by the API process: Bull Board and its login under /admin, the API reference under /api/v1/docs. */
const pagePrefixes = ['/admin', '/api/v1/docs'];
const isPage = (path: string): boolean => pagePrefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));

/**
 * The helmet headers that mean something on a JSON answer (OWASP's REST Security Cheat Sheet): the
 * others (Cross-Origin-Opener-Policy, Origin-Agent-Cluster, X-DNS-Prefetch-Control, X-Download-Options,
 * X-Permitted-Cross-Domain-Policies, X-XSS-Protection) govern HTML documents or old plugins, and each
 * costs every answer a header.
 */
const jsonHeaderNames = new Set(['content-security-policy', 'cross-origin-resource-policy', 'referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options']);

/**
 * helmet's headers, in one place. JSON routes get the strictest CSP there is (`default-src 'none'`:
 * a JSON answer never needs to load anything, so a response rendered as HTML by mistake cannot run
 * script) and may not be framed. The HTML pages keep all of helmet's headers but no CSP here: Bull Board
 * and the API reference UI ship inline scripts and styles, so whoever mounts them sets the CSP they need.
 */
export function securityHeaders(): RequestHandler {
  const json = headersSetBy(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      xFrameOptions: { action: 'deny' },
    }),
  ).filter(([name]) => jsonHeaderNames.has(name.toLowerCase()));
  const pages = headersSetBy(helmet({ contentSecurityPolicy: false }));
  return (req, res, next) => {
    for (const [name, value] of isPage(req.path) ? pages : json) res.setHeader(name, value);
    next();
  };
}

/**
 * The headers a helmet middleware sets. With static options they are the same on every response, so
 * they are read once here and copied onto each response (a dozen nested middleware calls cost more).
 * helmet's only other act, removing X-Powered-By, is done by `app.disable('x-powered-by')`.
 */
function headersSetBy(middleware: ReturnType<typeof helmet>): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  const recorder = { setHeader: (name: string, value: unknown) => headers.push([name, String(value)]), removeHeader: () => undefined };
  middleware({} as never, recorder as never, () => undefined);
  return headers;
}
