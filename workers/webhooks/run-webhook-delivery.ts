import type { MikroORM } from '@mikro-orm/postgresql';
import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { JobRegistry } from '../../jobs/registry.js';
import { createRedis } from '../../lib/redis.js';
import type { JobLifecycleHook } from '../lifecycle.js';
import { deliveryAgents } from '../../lib/webhooks/address-guard.js';
import { DeliveryLeases } from '../../lib/webhooks/delivery-leases.js';
import { createDeliverProcessor } from './deliver.processor.js';
import { startDeliverySweep } from './delivery-sweep.js';
import { webhookEmitter } from './webhook-emitter.js';
import { createWebhookQueue, webhookQueueName, webhookRetryDelayMs, type WebhookDeliveryData } from '../../queue/webhook-queue.js';

export interface WebhookDelivery {
  /** Register in the workers' lifecycle hooks: emits deliveries for final job outcomes. */
  hook: JobLifecycleHook & { forget(customerId: string): void };
  worker: Worker<WebhookDeliveryData>;
  close(): Promise<void>;
}

/** Stalls (its process died while sending) after which a delivery's BullMQ job fails; the delivery sweep retries it even then. */
const webhookMaxStalls = 20;

/**
 * The webhook side of a worker process: the emitting hook and a worker on the delivery queue with its
 * own concurrency (WEBHOOK_CONCURRENCY), so slow or failing receivers never take a job slot.
 */
export function runWebhookDelivery(deps: { config: Config; orm: MikroORM; logger: Logger; registry: JobRegistry }): WebhookDelivery {
  const { config, orm, logger, registry } = deps;
  const queueConnection = createRedis(config.redis, 'enqueue');
  const queue = createWebhookQueue(queueConnection, config.queuePrefix);
  const agents = deliveryAgents(config.webhookAllowPrivate);
  const leaseConnection = createRedis(config.redis, 'commands');
  const worker = new Worker<WebhookDeliveryData>(
    webhookQueueName,
    createDeliverProcessor({
      orm,
      vaultKey: config.vaultKey,
      agents,
      logger,
      leases: new DeliveryLeases(leaseConnection, config.queuePrefix),
      timeoutMs: config.webhookTimeoutMs,
      policy: {
        endpointConcurrency: config.webhookEndpointConcurrency,
        customerConcurrency: config.webhookCustomerConcurrency,
        halfOpenTimeoutMs: config.webhookHalfOpenTimeoutMs,
        breaker: {
          failuresToOpen: config.webhookBreakerFailures,
          cooldownMs: config.webhookBreakerCooldownMs,
          failuresToDisable: config.webhookDisableAfterFailures,
          disableAfterMs: config.webhookDisableAfterMs,
        },
      },
    }),
    {
      connection: createRedis(config.redis, 'blocking'),
      prefix: config.queuePrefix,
      concurrency: config.webhookConcurrency,
      // A delivery whose sending process died is sent again (the same webhook-id), however often that happens:
      // BullMQ's default of one stall fails it for good after a second crash, with no attempt recorded.
      maxStalledCount: webhookMaxStalls,
      settings: { backoffStrategy: (attemptsMade) => webhookRetryDelayMs(attemptsMade, config.webhookRetryBaseMs) },
    },
  );
  worker.on('error', (error) => logger.error({ err: error, queue: webhookQueueName }, 'webhook worker error'));
  const sweep = startDeliverySweep({ orm, queue, logger }, { intervalMs: config.webhookSweepIntervalMs });

  return {
    hook: webhookEmitter({ orm, queue, registry, resultMaxBytes: config.webhookResultMaxBytes }),
    worker,
    async close() {
      await sweep.stop();
      await worker.close();
      await queue.close();
      agents.http.destroy();
      agents.https.destroy();
      await Promise.all([worker.disconnect(), queueConnection.quit(), leaseConnection.quit()]);
    },
  };
}
