import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { InvocationCache } from '../../db/invocation-cache.js';
import type { JobContext } from '../../jobs/context.js';
import { invokeJob } from '../../jobs/invoke/invoke.job.js';
import { standaloneJobContext } from '../../ops/standalone-job-context.js';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

const suite = useTestApp({ workers: true, users: 1 });
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let customerId: string;

beforeAll(async () => {
  request = suite.request;
  alice = suite.users[0] as TestUser;
  const [row] = await suite.app.sql<{ customer_id: string }>('select customer_id from users where email = $1', [alice.email]);
  customerId = row!.customer_id;
});

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/**
 * An invoke job run by hand, as a worker runs it, held inside its evaluation until `finish` is called: the
 * invocation in flight while the substrate is deleted. `stored` settles when its (unawaited) cache write has.
 */
function invocationInFlight(substrateId: string, parameters: Record<string, unknown>, cacheMissed: boolean) {
  const evaluating = deferred();
  const evaluated = deferred<{ value: unknown }>();
  const stores: Array<Promise<boolean>> = [];
  const cache = suite.app.deps.cache;
  const watchedCache = Object.create(cache, {
    set: {
      value: (...args: Parameters<InvocationCache['set']>) => {
        const stored = cache.set(...args);
        stores.push(stored);
        return stored;
      },
    },
  }) as InvocationCache;
  const runTask = (() => {
    evaluating.resolve();
    return evaluated.promise;
  }) as unknown as JobContext['runTask'];
  const ctx = standaloneJobContext(
    {
      logger: pino({ level: 'silent' }),
      em: suite.app.deps.orm.em.fork(),
      redis: suite.app.deps.redis,
      config: suite.app.config,
      cache: watchedCache,
    },
    { customerId, cacheMissed, runTask },
  );
  const answer = invokeJob.process({ substrate_id: substrateId, parameters }, ctx);
  return {
    evaluating: evaluating.promise,
    async finish(value: unknown) {
      evaluated.resolve({ value });
      const result = await answer;
      await Promise.all(stores);
      return result;
    },
  };
}

const create = (expression: string) =>
  request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression } });
const remove = (id: string) => request('DELETE', `/api/v1/substrates/${id}`, { token: alice.accessToken });
const invoke = (id: string, parameters: Record<string, unknown>) =>
  request('POST', `/api/v1/substrates/${id}/invoke`, { token: alice.accessToken, headers: { prefer: 'wait=10' }, body: { parameters } });

describe('invocation cache and a substrate deleted while it is being invoked', () => {
  it.each([
    ['before', false],
    ['before', true],
    ['after', false],
    ['after', true],
  ])(
    'never answers a re-created substrate from a result whose store lands %s its re-creation (submitter missed: %s)',
    async (when, cacheMissed) => {
      // One substrate per case; `result` is what it evaluates to, never what the held evaluation answers.
      const k = (when === 'before' ? 1 : 2) + (cacheMissed ? 10 : 0);
      const expression = `x * 3 + ${k}`;
      const result = 7 * 3 + k;
      const created = await create(expression);
      expect(created.status).toBe(201);
      const id = created.body.substrate_id as string;
      const inFlight = invocationInFlight(id, { x: 7 }, cacheMissed);
      await inFlight.evaluating;
      expect((await remove(id)).status).toBe(204);
      if (when === 'after') expect((await create(expression)).status).toBe(201);
      const late = await inFlight.finish('stale');
      expect(late).toMatchObject({ substrate_id: id, result: 'stale', cached: false });
      if (when === 'before') {
        // Deleted, with the late store in: still not found, rather than answered from the cache.
        expect((await invoke(id, { x: 7 })).status).toBe(404);
        const again = await create(expression);
        expect(again.status).toBe(201);
        expect(again.body.substrate_id).toBe(id);
      }
      const first = await invoke(id, { x: 7 });
      expect(first.body.result, first.text).toMatchObject({ substrate_id: id, result, cached: false });
      // The re-created substrate is cached as usual from its own first result on.
      const second = await invoke(id, { x: 7 });
      expect(second.body.result, second.text).toMatchObject({ substrate_id: id, result, cached: true });
    },
  );
});
