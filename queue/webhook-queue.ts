import { Queue } from 'bullmq';
import type { RedisClient } from '../lib/redis.js';
import { queueName } from './queue-names.js';
import { retention } from './queues.js';

/**
 * The internal queue deliveries travel on, `{webhook-delivery}`: its own hash tag, not sharded (yet).
 * Deliveries are network-bound (a delivery waits seconds on a receiver, not Redis), far fewer than jobs,
 * and per-endpoint and per-customer delivery limits are simplest over one queue; sharding it by delivery
 * id later is the same change as for the job types. Not a job type: nobody can POST /jobs to it.
 */
export const webhookQueueType = 'webhook-delivery';
export const webhookQueueName = queueName(webhookQueueType, null);

/** What a delivery's BullMQ job carries; the webhook_deliveries row holds the rest. */
export interface WebhookDeliveryData {
  deliveryId: string;
}

export type WebhookQueue = Queue<WebhookDeliveryData>;

/** Tries per delivery: the first plus 14 retries. */
export const webhookAttempts = 15;
/** No retry waits longer than 6 hours (before jitter). */
export const webhookRetryCapMs = 6 * 3600 * 1000;
/** Each wait is stretched by up to this fraction at random, so receivers coming back up are not stampeded. */
export const webhookRetryJitter = 0.2;

/**
 * The wait before retry number `retry` (1-based): `baseMs · 2^(retry−1)`, capped at 6 h, plus 0–20 %
 * jitter. Jitter only lengthens a wait, so the schedule never ends sooner than its nominal total.
 * With the production base of 30 s the 14 retries wait 30 s, 1 min, 2 min, … 4.3 h, then 6 h four
 * times: 117,090 s ≈ 32.5 h nominal, at most ≈ 39 h with jitter — over the 24 h the spec asks for.
 */
export function webhookRetryDelayMs(retry: number, baseMs: number, random: () => number = Math.random): number {
  const nominal = Math.min(baseMs * 2 ** Math.max(0, retry - 1), webhookRetryCapMs);
  return Math.round(nominal * (1 + webhookRetryJitter * random()));
}

/** The `backoff.type` delivery jobs use; the delivery worker supplies the strategy. */
export const webhookBackoffType = 'webhook-exponential';

export function createWebhookQueue(connection: RedisClient, prefix: string): WebhookQueue {
  const queue = new Queue<WebhookDeliveryData>(webhookQueueName, {
    connection,
    prefix,
    defaultJobOptions: { attempts: webhookAttempts, backoff: { type: webhookBackoffType }, ...retention },
  });
  // Connection errors re-emitted by the queue would otherwise be printed raw to stderr on every reconnect
  // attempt during a Redis outage; a failed add rejects to its caller, which handles it.
  queue.on('error', () => undefined);
  return queue;
}

/** Enqueues deliveries under their own ids, so emitting the same deliveries twice enqueues them once. */
export async function enqueueDeliveries(queue: WebhookQueue, deliveryIds: string[]): Promise<void> {
  if (deliveryIds.length === 0) return;
  await queue.addBulk(deliveryIds.map((deliveryId) => ({ name: 'deliver', data: { deliveryId }, opts: { jobId: deliveryId } })));
}
