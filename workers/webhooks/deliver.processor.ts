import type { MikroORM } from '@mikro-orm/postgresql';
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { uuidv7 } from '../../lib/uuid.js';
import { decryptSecret, encryptSecret } from '../../lib/crypto.js';
import { findDeliveryToSend, recordAttempt } from '../../db/repositories/webhook-deliveries.js';
import { recordWebhookDelivery } from '../../lib/metrics/catalog.js';
import { ensureAccountSecret, recordEndpointOutcome, type BreakerPolicy } from '../../db/repositories/webhook-endpoints.js';
import type { DeliveryAgents } from '../../lib/webhooks/address-guard.js';
import { endpointLeaseKey, type DeliveryLeases } from '../../lib/webhooks/delivery-leases.js';
import { deliveryTimeoutMs, postWebhook } from './post-webhook.js';
import { newWebhookSecret, signatureHeaders } from '../../lib/webhooks/signing.js';
import type { WebhookDeliveryData } from '../../queue/webhook-queue.js';

/** How deliveries share capacity and when an endpoint's breaker opens (WEBHOOK_* configuration). */
export interface DeliveryPolicy {
  /** Deliveries in flight per endpoint, across worker processes. */
  endpointConcurrency: number;
  /** Deliveries in flight per customer, across worker processes. */
  customerConcurrency: number;
  /** Timeout of a half-open endpoint's trial delivery, in ms. */
  halfOpenTimeoutMs: number;
  breaker: BreakerPolicy;
}

export interface DeliverDeps {
  orm: MikroORM;
  vaultKey: Buffer;
  agents: DeliveryAgents;
  logger: Logger;
  leases: DeliveryLeases;
  policy: DeliveryPolicy;
  /** Per-attempt timeout in ms. Default 10 s. */
  timeoutMs?: number;
  random?: () => number;
}

/** A receiver did not take the delivery; BullMQ retries it on the webhook backoff. */
export class DeliveryFailedError extends Error {
  override name = 'DeliveryFailedError';
}

/** A delivery that waits for a lease comes back after 250–1,500 ms (spread, so waiting deliveries do not move in step). */
const leaseWaitMs = (random: () => number) => 250 + Math.round(random() * 1250);

/**
 * Sends one delivery attempt: sign, POST, record the attempt. A non-2xx answer (or none) throws so
 * BullMQ retries with backoff; the last try marks the delivery failed. A delivery whose endpoint was
 * deleted, that already settled, or that a redelivery took over, is dropped quietly.
 *
 * Before sending, the delivery must get past its endpoint's circuit breaker (open: it waits for the end of
 * the cool-down; half-open: it is the one trial, with a short timeout) and take a lease on its endpoint and
 * its customer (DeliveryLeases). A delivery that cannot is moved back to BullMQ's delayed set without using
 * an attempt or holding a worker slot, so one customer's hanging endpoints never hold another's deliveries.
 */
export function createDeliverProcessor(deps: DeliverDeps) {
  const random = deps.random ?? Math.random;
  const timeoutMs = deps.timeoutMs ?? deliveryTimeoutMs;
  const later = async (job: Job<WebhookDeliveryData>, token: string | undefined, waitMs: number): Promise<never> => {
    await job.moveToDelayed(Date.now() + waitMs, token);
    throw new DelayedError();
  };

  return async (job: Job<WebhookDeliveryData>, token?: string): Promise<{ status: number | null } | null> => {
    const em = deps.orm.em.fork();
    const delivery = await findDeliveryToSend(em, job.data.deliveryId);
    // Settled, or superseded by a redelivery (which carries a new BullMQ id): nothing to send.
    if (!delivery || delivery.state !== 'pending' || delivery.queueJobId !== job.id) return null;

    if (delivery.endpointDisabled) {
      await recordAttempt(em, {
        id: uuidv7(),
        deliveryId: delivery.id,
        statusCode: null,
        durationMs: 0,
        error: 'not sent: the endpoint is disabled after a long failure',
        state: 'failed',
      });
      recordWebhookDelivery('failed', 0);
      return null;
    }
    const now = Date.now();
    if (delivery.breakerOpenUntil !== null && delivery.breakerOpenUntil > now) {
      return later(job, token, delivery.breakerOpenUntil - now + leaseWaitMs(random));
    }
    const halfOpen = delivery.breakerOpenUntil !== null;
    const attemptTimeoutMs = halfOpen ? Math.min(timeoutMs, deps.policy.halfOpenTimeoutMs) : timeoutMs;
    const lease = {
      deliveryId: job.id as string,
      endpointKey: endpointLeaseKey(delivery.endpointId, delivery.url),
      customerId: delivery.customerId,
    };
    const refused = await deps.leases.acquire({
      ...lease,
      // Half-open: one trial at a time.
      endpointCap: halfOpen ? 1 : deps.policy.endpointConcurrency,
      customerCap: deps.policy.customerConcurrency,
      ttlMs: attemptTimeoutMs + 5000,
    });
    if (refused) return later(job, token, leaseWaitMs(random));

    let outcome;
    try {
      const encryptedSecret =
        delivery.encryptedSecret ??
        (await ensureAccountSecret(em, delivery.customerId, () => encryptSecret(deps.vaultKey, newWebhookSecret()))).encryptedSecret;
      const body = JSON.stringify(delivery.payload);
      const headers = signatureHeaders(decryptSecret(deps.vaultKey, encryptedSecret), delivery.messageId, body);
      outcome = await postWebhook({ url: delivery.url, body, headers: { ...headers }, agents: deps.agents, timeoutMs: attemptTimeoutMs });
    } finally {
      await deps.leases.release(lease).catch(() => undefined);
    }

    const succeeded = outcome.error === null;
    const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    await recordAttempt(em, {
      id: uuidv7(),
      deliveryId: delivery.id,
      ...outcome,
      state: succeeded ? 'succeeded' : lastTry ? 'failed' : 'pending',
    });
    if (delivery.endpointId) {
      const endpoint = await recordEndpointOutcome(em, delivery.endpointId, succeeded, deps.policy.breaker);
      if (endpoint?.disabled)
        deps.logger.warn(
          { endpointId: delivery.endpointId, customerId: delivery.customerId, reason: endpoint.disabledReason },
          'webhook endpoint disabled after a long failure',
        );
    }
    recordWebhookDelivery(succeeded ? 'succeeded' : lastTry ? 'failed' : 'retrying', outcome.durationMs / 1000);
    if (!succeeded) throw new DeliveryFailedError(outcome.error ?? 'delivery failed');
    return { status: outcome.statusCode };
  };
}
