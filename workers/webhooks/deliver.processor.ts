import type { MikroORM } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import { uuidv7 } from 'uuidv7';
import { decryptSecret, encryptSecret } from '../../lib/crypto.js';
import { findDeliveryToSend, recordAttempt } from '../../db/repositories/webhook-deliveries.js';
import { recordWebhookDelivery } from '../../lib/metrics/catalog.js';
import { ensureAccountSecret } from '../../db/repositories/webhook-endpoints.js';
import type { DeliveryAgents } from '../../lib/webhooks/address-guard.js';
import { postWebhook } from './post-webhook.js';
import { newWebhookSecret, signatureHeaders } from '../../lib/webhooks/signing.js';
import type { WebhookDeliveryData } from '../../queue/webhook-queue.js';

export interface DeliverDeps {
  orm: MikroORM;
  vaultKey: Buffer;
  agents: DeliveryAgents;
  logger: Logger;
  /** Per-attempt timeout in ms. Default 10 s. */
  timeoutMs?: number;
}

/** A receiver did not take the delivery; BullMQ retries it on the webhook backoff. */
export class DeliveryFailedError extends Error {
  override name = 'DeliveryFailedError';
}

/**
 * Sends one delivery attempt: sign, POST, record the attempt. A non-2xx answer (or none) throws so
 * BullMQ retries with backoff; the last try marks the delivery failed. A delivery whose endpoint was
 * deleted, that already settled, or that a redelivery took over, is dropped quietly.
 */
export function createDeliverProcessor(deps: DeliverDeps) {
  return async (job: Job<WebhookDeliveryData>): Promise<{ status: number | null } | null> => {
    const em = deps.orm.em.fork();
    const delivery = await findDeliveryToSend(em, job.data.deliveryId);
    // Settled, or superseded by a redelivery (which carries a new BullMQ id): nothing to send.
    if (!delivery || delivery.state !== 'pending' || delivery.queueJobId !== job.id) return null;

    const encryptedSecret =
      delivery.encryptedSecret ??
      (await ensureAccountSecret(em, delivery.customerId, () => encryptSecret(deps.vaultKey, newWebhookSecret()))).encryptedSecret;
    const body = JSON.stringify(delivery.payload);
    const headers = signatureHeaders(decryptSecret(deps.vaultKey, encryptedSecret), delivery.messageId, body);
    const outcome = await postWebhook({ url: delivery.url, body, headers: { ...headers }, agents: deps.agents, timeoutMs: deps.timeoutMs });

    const succeeded = outcome.error === null;
    const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    await recordAttempt(em, {
      id: uuidv7(),
      deliveryId: delivery.id,
      ...outcome,
      state: succeeded ? 'succeeded' : lastTry ? 'failed' : 'pending',
    });
    recordWebhookDelivery(succeeded ? 'succeeded' : lastTry ? 'failed' : 'retrying', outcome.durationMs / 1000);
    if (!succeeded) throw new DeliveryFailedError(outcome.error ?? 'delivery failed');
    return { status: outcome.statusCode };
  };
}
