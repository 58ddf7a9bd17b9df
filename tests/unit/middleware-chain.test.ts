import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chain } from '../../api/middleware-chain.js';

/** An Express app on port 0 with `chained` mounted first, answering `GET /echo` with the steps each request took. */
function appWith(chained: RequestHandler) {
  const app = express();
  app.use((req, _res, next) => {
    (req as unknown as { steps: string[] }).steps = [];
    next();
  });
  app.use(chained);
  app.get('/echo', (req, res) => {
    res.json({ steps: (req as unknown as { steps: string[] }).steps });
  });
  const onError: ErrorRequestHandler = (error: Error, req, res, _next) => {
    res.status(500).json({ error: error.message, steps: (req as unknown as { steps: string[] }).steps });
  };
  app.use(onError);
  return app;
}

const step =
  (name: string, then: (next: (error?: unknown) => void) => unknown = (next) => next()): RequestHandler =>
  (req, _res, next) => {
    (req as unknown as { steps: string[] }).steps.push(name);
    return then(next);
  };

describe('chain', () => {
  let server: http.Server;
  let base: string;
  const routes: Record<string, RequestHandler> = {
    '/in-order': chain(step('a'), step('b'), step('c')),
    '/async': chain(
      step('a', (next) => setTimeout(next, 5)),
      step('b'),
    ),
    '/next-error': chain(
      step('a', (next) => next(new Error('refused at a'))),
      step('b'),
    ),
    '/throws': chain(
      step('a', () => {
        throw new Error('thrown at a');
      }),
      step('b'),
    ),
    '/rejects': chain(
      step('a', async () => {
        await Promise.resolve();
        throw new Error('rejected at a');
      }),
      step('b'),
    ),
    '/route': chain(
      step('a', (next) => next('route')),
      step('b'),
    ),
  };

  beforeAll(async () => {
    const app = express();
    for (const [path, chained] of Object.entries(routes)) app.use(path, appWith(chained));
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const get = async (path: string) => {
    const answer = await fetch(`${base}${path}/echo`);
    return { status: answer.status, body: (await answer.json()) as { steps: string[]; error?: string } };
  };

  it('runs its handlers in order, then the routes behind it', async () => {
    expect(await get('/in-order')).toEqual({ status: 200, body: { steps: ['a', 'b', 'c'] } });
  });

  it('waits for a handler that goes on later', async () => {
    expect(await get('/async')).toEqual({ status: 200, body: { steps: ['a', 'b'] } });
  });

  it('leaves with the error a handler passes to next, a throw or a rejected promise: the handlers behind it never run', async () => {
    expect(await get('/next-error')).toEqual({ status: 500, body: { error: 'refused at a', steps: ['a'] } });
    expect(await get('/throws')).toEqual({ status: 500, body: { error: 'thrown at a', steps: ['a'] } });
    expect(await get('/rejects')).toEqual({ status: 500, body: { error: 'rejected at a', steps: ['a'] } });
  });

  it("goes on with the next handler on next('route'), as between app.use middleware", async () => {
    expect(await get('/route')).toEqual({ status: 200, body: { steps: ['a', 'b'] } });
  });

  it('refuses error handlers, which it would never call', () => {
    const onError: ErrorRequestHandler = (_error, _req, _res, next) => next();
    expect(() => chain(step('a'), onError as unknown as RequestHandler)).toThrow(/error handlers/);
  });

  it('shows the layers of the routers inside it to route walkers', () => {
    const router = express.Router();
    router.get('/x', (_req, res) => res.end());
    router.post('/y', (_req, res) => res.end());
    expect(chain(step('a'), router).stack.map((layer) => (layer as { route?: { path: string } }).route?.path)).toEqual(['/x', '/y']);
  });
});
