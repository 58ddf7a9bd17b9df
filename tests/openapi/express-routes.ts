import type { Express } from 'express';

/** The parts of an Express 5 (router 2) layer this walk reads. */
interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  /** The path given to `use()`/`route()`: kept by router ≥ 2.3 (`layer.rawPath`). */
  rawPath?: unknown;
  slash?: boolean;
}

export interface ExpressRoute {
  method: string;
  /** Full path in Express syntax, e.g. `/api/v1/jobs/:id`. */
  path: string;
}

const join = (prefix: string, path: string) => `${prefix}${path === '/' ? '' : path}`.replace(/\/{2,}/g, '/') || '/';

/**
 * Every `METHOD path` the app routes, walking nested routers (`app.use(path, router)`). A sub-app
 * mounted with `app.use` (Bull Board) is a function without a stack and is not entered.
 */
export function listExpressRoutes(app: Express): ExpressRoute[] {
  const routes: ExpressRoute[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) {
          for (const [method, enabled] of Object.entries(layer.route.methods)) {
            if (enabled && method !== '_all') routes.push({ method: method.toUpperCase(), path: join(prefix, path) });
          }
        }
        continue;
      }
      const nested = layer.handle?.stack;
      if (!nested) continue;
      if (layer.slash) walk(nested, prefix);
      else if (typeof layer.rawPath === 'string') walk(nested, join(prefix, layer.rawPath));
      else throw new Error(`a router is mounted at ${String(layer.rawPath)}, which this walk cannot turn into a path`);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  const unique = new Map(routes.map((route) => [`${route.method} ${route.path}`, route]));
  return [...unique.values()];
}

/** `/jobs/:id` → `/jobs/{id}`. */
export const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
