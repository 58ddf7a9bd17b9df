import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** HTML pages served by the API process: Bull Board and its login under /admin, the API reference under /api/v1/docs. */
const pagePrefixes = ['/admin', '/api/v1/docs'];
const isPage = (path: string): boolean => pagePrefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));

/**
 * helmet's headers, in one place. JSON routes get the strictest CSP there is (`default-src 'none'`:
 * a JSON answer never needs to load anything, so a response rendered as HTML by mistake cannot run
 * script) and may not be framed; they carry only the headers that mean something on a JSON answer
 * (OWASP's REST Security Cheat Sheet), since the others govern HTML documents or old plugins and each
 * costs every answer a header. The HTML pages keep all of helmet's headers but no CSP here: Bull Board
 * and the API reference UI ship inline scripts and styles, so whoever mounts them sets the CSP they need.
 */
export function securityHeaders(): RequestHandler {
  const json = headersSetBy(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      xFrameOptions: { action: 'deny' },
      crossOriginOpenerPolicy: false,
      originAgentCluster: false,
      xDnsPrefetchControl: false,
      xDownloadOptions: false,
      xPermittedCrossDomainPolicies: false,
      xXssProtection: false,
    }),
  );
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
