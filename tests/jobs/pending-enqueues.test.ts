import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJobDefinition } from '../../jobs/registry.js';
import { metricsRegistry } from '../../lib/metrics/catalog.js';
import { PendingEnqueues } from '../../queue/pending-enqueues.js';
import { stopCancelledJob } from '../../queue/stop-cancelled-job.js';
import { submitJob, type SubmitDeps } from '../../queue/submit-job.js';
import { bullJob } from '../helpers/queues.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * A submit answers once the job's row is on disk; Redis's add may still be under way (queue/pending-enqueues.ts).
 * Redis is made slow by pausing its writes (CLIENT PAUSE WRITE) on a redis-server of the test's own.
 */
let server: PrivateRedis;
let admin: Redis;
let app: TestApp;
const definition = getJobDefinition('invoke')!;
const customerId = randomUUID();

beforeAll(async () => {
  server = await startPrivateRedis();
  admin = new Redis(server.url);
  app = await startTestApp({ REDIS_URL: server.url });
});

afterAll(async () => {
  await admin?.call('client', 'unpause').catch(() => undefined);
  await app?.close();
  await admin?.quit();
  await server?.stop();
});

const submitDeps = (pendingEnqueues?: PendingEnqueues): SubmitDeps => ({
  em: app.deps.orm.em.fork(),
  queues: app.deps.queues,
  logger: app.deps.logger,
  fair: app.deps.fair,
  ...(pendingEnqueues ? { pendingEnqueues } : {}),
});
const submit = (deps: SubmitDeps) =>
  submitJob(deps, { customerId, definition, payload: { substrate_id: randomUUID(), parameters: { x: 1 } } }).then((outcome) => {
    if (outcome.kind !== 'created') throw new Error(`not created: ${outcome.kind}`);
    return outcome.job;
  });
const pauseWrites = () => admin.call('client', 'pause', '60000', 'write');
const unpause = () => admin.call('client', 'unpause');
/** Whether `work` is still unsettled after `ms` (it is left running). */
const stillRunningAfter = (work: Promise<unknown>, ms: number) =>
  Promise.race([work.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), ms))]);
const rowState = async (id: string) => (await app.sql<{ state: string }>('select state from jobs where id = $1', [id]))[0]?.state;

describe('a submit answers before Redis takes the job', () => {
  it('returns once the row is stored while Redis is not taking writes; the job reaches the queue once it does', async () => {
    const pending = app.deps.pendingEnqueues;
    await pauseWrites();
    try {
      const job = await submit(submitDeps(pending));
      expect(await rowState(job.id)).toBe('queued');
      expect(pending.size).toBe(1);
      // What an operator sees: the API's gauge of adds not yet taken.
      expect((await metricsRegistry.getSingleMetric('chrysalis_pending_enqueues')?.get())?.values[0]?.value).toBe(1);
      expect(await bullJob(app.deps.queues, 'invoke', job.id)).toBeUndefined();
      await unpause();
      await pending.settled(job.id);
      expect((await bullJob(app.deps.queues, 'invoke', job.id))?.id).toBe(job.id);
      expect(pending.size).toBe(0);
    } finally {
      await unpause();
    }
  });

  it('without a holder (a schedule run, a worker) the submit waits for the add, as before', async () => {
    await pauseWrites();
    try {
      const submitting = submit(submitDeps());
      expect(await stillRunningAfter(submitting, 300)).toBe(true);
      await unpause();
      const job = await submitting;
      expect((await bullJob(app.deps.queues, 'invoke', job.id))?.id).toBe(job.id);
    } finally {
      await unpause();
    }
  });

  it('a cancel waits for its job’s pending add, then takes the job off the queue', async () => {
    const pending = new PendingEnqueues();
    await pauseWrites();
    try {
      const job = await submit(submitDeps(pending));
      const stopping = stopCancelledJob(
        { queues: app.deps.queues, redis: app.deps.redis, queuePrefix: app.config.queuePrefix, pendingEnqueues: pending },
        job,
      );
      expect(await stillRunningAfter(stopping, 300)).toBe(true);
      await unpause();
      await stopping;
      expect(await bullJob(app.deps.queues, 'invoke', job.id)).toBeUndefined();
    } finally {
      await unpause();
    }
  });

  it('drain waits for every pending add; past its cap a submit waits for its own add', async () => {
    const pending = new PendingEnqueues(2);
    await pauseWrites();
    try {
      const held = [await submit(submitDeps(pending)), await submit(submitDeps(pending))];
      const third = submit(submitDeps(pending));
      expect(await stillRunningAfter(third, 300)).toBe(true);
      const draining = pending.drain();
      expect(await stillRunningAfter(draining, 50)).toBe(true);
      await unpause();
      await draining;
      for (const job of [...held, await third]) expect((await bullJob(app.deps.queues, 'invoke', job.id))?.id).toBe(job.id);
      expect(pending.size).toBe(0);
    } finally {
      await unpause();
    }
  });
});
