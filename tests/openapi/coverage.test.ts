import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { buildOpenApiDocument } from '../../api/openapi.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { listExpressRoutes, toOpenApiPath } from './express-routes.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

afterAll(async () => {
  await app?.close();
});

const httpMethods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

function documentedRoutes(): Set<string> {
  const document = buildOpenApiDocument();
  const routes = new Set<string>();
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of Object.keys(item ?? {})) if (httpMethods.includes(method)) routes.add(`${method.toUpperCase()} ${path}`);
  }
  return routes;
}

function appRoutes(): string[] {
  return listExpressRoutes(createApp(app.deps))
    .filter((route) => route.path.startsWith('/api/v1/'))
    .map((route) => `${route.method} ${toOpenApiPath(route.path.slice('/api/v1'.length))}`)
    .sort();
}

describe('the OpenAPI document covers the API', () => {
  it('walks the real router (sanity: the walk finds the routes it should)', () => {
    expect(appRoutes()).toEqual(
      expect.arrayContaining(['POST /jobs', 'GET /jobs/{id}', 'GET /jobs/{id}/events', 'GET /openapi.json', 'GET /docs']),
    );
  });

  it('documents every route under /api/v1', () => {
    const documented = documentedRoutes();
    const missing = appRoutes().filter((route) => !documented.has(route));
    expect(missing, `routes missing from api/openapi (add them to the routes file's docs in api/openapi/):\n${missing.join('\n')}`).toEqual(
      [],
    );
  });

  it('documents no route the app does not have', () => {
    const routes = new Set(appRoutes());
    const stale = [...documentedRoutes()].filter((route) => !routes.has(route));
    expect(stale, `documented but not routed:\n${stale.join('\n')}`).toEqual([]);
  });
});
