import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { insertDeliveries } from '../../db/repositories/webhook-deliveries.js';
import { createRedis } from '../../lib/redis.js';
import { uuidv7 } from '../../lib/uuid.js';
import { createWebhookQueue, webhookQueueName, type WebhookQueue } from '../../queue/webhook-queue.js';
import { sweepDeliveries } from '../../workers/webhooks/delivery-sweep.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver } from './receiver.js';

/**
 * A pending delivery is its BullMQ job's to send. A delivery whose job Redis lost, or whose job failed without
 * settling it (its sending process died twice: BullMQ fails a job that stalls past its limit, and nothing
 * recorded an attempt), stayed pending forever. The delivery sweep gives such deliveries back to the queue.
 */
let app: TestApp;
let receiver: Receiver;
let customerId: string;
let sequence = 0;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  receiver = await Receiver.start();
  const request = httpClient(app.baseUrl);
  const user = await registerUser(request);
  customerId = (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id;
});

afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

/** A pending delivery to `path` made ten minutes ago, as the emitter stores one, with no BullMQ job. */
async function strandedDelivery(path: string): Promise<string> {
  const tenMinutesAgo = uuidv7Floor(new Date(Date.now() - 600_000));
  const id = `${tenMinutesAgo.slice(0, 14)}7000-8000-${String(++sequence).padStart(12, '0')}`;
  const [stored] = await insertDeliveries(app.deps.orm.em.fork(), [
    {
      id,
      customerId,
      endpointId: null,
      jobId: uuidv7(),
      url: receiver.url(path),
      eventType: 'job.completed',
      payload: { type: 'job.completed', data: { id } },
      messageId: `msg_${id}`,
      dedupeKey: `sweep-test:${id}`,
    },
  ]);
  return stored!;
}

const deliveryState = async (id: string) =>
  (await app.sql<{ state: string; attempts: number }>(`select state, attempts from webhook_deliveries where id = $1`, [id]))[0];

describe('the delivery sweep', () => {
  it('enqueues again a pending delivery whose BullMQ job is gone, which the worker then delivers; a fresh one is left alone', async () => {
    const lost = await strandedDelivery('/lost');
    const queue = createWebhookQueue(createRedis(app.config.redis), app.config.queuePrefix);
    try {
      expect(await queue.getJobState(lost)).toBe('unknown');
      const outcome = await sweepDeliveries({ orm: app.deps.orm, queue }, 60_000, null, 500);
      expect(outcome).toMatchObject({ requeued: 1, retried: 0 });
      await waitFor(async () => (await deliveryState(lost))?.state === 'succeeded', 15_000);
      expect(receiver.at('/lost')).toHaveLength(1);
      expect(receiver.at('/lost')[0]!.headers['webhook-id']).toBe(`msg_${lost}`);
      // Settled: a later pass finds nothing to do.
      expect(await sweepDeliveries({ orm: app.deps.orm, queue }, 60_000, null, 500)).toMatchObject({ requeued: 0, retried: 0 });
      // Younger than the grace: its enqueue may still be on its way.
      expect(await sweepDeliveries({ orm: app.deps.orm, queue }, 3_600_000, null, 500)).toMatchObject({ checked: 0 });
    } finally {
      await queue.close();
    }
  });

  it('retries a pending delivery whose BullMQ job failed without settling it', async () => {
    // A queue of its own (another prefix), so the app's delivery worker does not take the job before it fails.
    const prefix = `${app.config.queuePrefix}-sweep`;
    const queue: WebhookQueue = createWebhookQueue(createRedis(app.config.redis), prefix);
    const failer = new Worker(
      webhookQueueName,
      async () => {
        throw new UnrecoverableError('job stalled more than allowable limit');
      },
      { connection: createRedis(app.config.redis, 'blocking'), prefix },
    );
    try {
      const stalled = await strandedDelivery('/stalled');
      await queue.add('deliver', { deliveryId: stalled }, { jobId: stalled });
      await waitFor(async () => (await queue.getJobState(stalled)) === 'failed', 10_000);
      await failer.close();
      expect(await deliveryState(stalled)).toEqual({ state: 'pending', attempts: 0 });
      const outcome = await sweepDeliveries({ orm: app.deps.orm, queue }, 60_000, null, 500);
      expect(outcome.retried).toBe(1);
      expect(['waiting', 'prioritized']).toContain(await queue.getJobState(stalled));
      // Two processes sweeping at once: the second finds it no longer failed.
      expect((await sweepDeliveries({ orm: app.deps.orm, queue }, 60_000, null, 500)).retried).toBe(0);
    } finally {
      await failer.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
