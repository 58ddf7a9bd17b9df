import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { listPendingDeliveries } from '../../db/repositories/webhook-deliveries.js';
import { eachAtMost } from '../../lib/each-at-most.js';
import type { WebhookQueue } from '../../queue/webhook-queue.js';

/** BullMQ state lookups of one pass in flight at once. */
const checksAtOnce = 64;

export interface DeliverySweepOptions {
  /** How often a pass runs, in ms. Default 60,000. */
  intervalMs?: number;
  /** Deliveries younger than this are left alone (their enqueue may still be in flight), in ms. Default 60,000. */
  graceMs?: number;
  /** Deliveries one pass looks at; the next pass goes on after the last. Default 2,000. */
  batchSize?: number;
}

export interface DeliverySweepOutcome {
  checked: number;
  /** Deliveries whose BullMQ job was gone (Redis lost it, or the process died between insert and enqueue): enqueued again. */
  requeued: number;
  /** Deliveries whose BullMQ job had failed without recording its end (it stalled out: the sending process died twice): retried. */
  retried: number;
}

/**
 * A pending delivery is its BullMQ job's to send: when that job is gone or has failed without settling the
 * delivery, nothing would ever send it, record its attempts or fail it, yet SPEC §5 retries deliveries for at
 * least 24 h. This pass gives such a delivery back to the queue: a lost job is enqueued again under its id, a
 * failed one is retried (its attempts kept, so the retry budget still ends it). Passes of several worker
 * processes may overlap: both steps are idempotent (a duplicate add is ignored, a second retry finds nothing
 * failed).
 */
export async function sweepDeliveries(
  deps: { orm: MikroORM; queue: WebhookQueue },
  graceMs: number,
  afterId: string | null,
  batchSize: number,
): Promise<DeliverySweepOutcome & { lastId: string | null }> {
  const pending = await listPendingDeliveries(deps.orm.em.fork(), uuidv7Floor(new Date(Date.now() - graceMs)), afterId, batchSize);
  const outcome = { checked: pending.length, requeued: 0, retried: 0, lastId: pending.at(-1)?.id ?? null };
  const lost: string[] = [];
  // A pass is mostly deliveries waiting out their backoff (a customer whose endpoint fails can hold a great many):
  // their states are asked of Redis `checksAtOnce` at a time, not one round trip each.
  await eachAtMost(checksAtOnce, pending, async (delivery) => {
    const jobId = delivery.queueJobId ?? delivery.id;
    const state = await deps.queue.getJobState(jobId);
    if (state === 'unknown') {
      lost.push(jobId);
    } else if (state === 'failed') {
      const job = await deps.queue.getJob(jobId);
      const retried = await job?.retry('failed').then(
        () => true,
        () => false, // another process retried it first
      );
      if (retried) outcome.retried += 1;
    }
  });
  // A redelivery's job carries another id than its delivery, but its data names the delivery all the same.
  if (lost.length > 0) {
    const byJob = new Map(pending.map((delivery) => [delivery.queueJobId ?? delivery.id, delivery.id]));
    await deps.queue.addBulk(lost.map((jobId) => ({ name: 'deliver', data: { deliveryId: byJob.get(jobId) as string }, opts: { jobId } })));
    outcome.requeued = lost.length;
  }
  return outcome;
}

/** Runs `sweepDeliveries` every `intervalMs`, going on from where the last pass stopped and starting over at the end. */
export function startDeliverySweep(
  deps: { orm: MikroORM; queue: WebhookQueue; logger: Logger },
  options: DeliverySweepOptions = {},
): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? 60_000;
  const graceMs = options.graceMs ?? 60_000;
  const batchSize = options.batchSize ?? 2000;
  let afterId: string | null = null;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    running = sweepDeliveries(deps, graceMs, afterId, batchSize)
      .then((outcome) => {
        afterId = outcome.checked < batchSize ? null : outcome.lastId;
        if (outcome.requeued + outcome.retried > 0)
          deps.logger.warn({ requeued: outcome.requeued, retried: outcome.retried }, 'webhook deliveries given back to the queue');
      })
      .catch((error: unknown) => deps.logger.warn({ err: error }, 'webhook delivery sweep failed; will try again'))
      .finally(() => {
        if (timer) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    async stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
