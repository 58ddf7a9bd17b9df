import type { MikroORM } from '@mikro-orm/postgresql';
import { uuidv7 } from '../../lib/uuid.js';
import { jobLocation, jobView } from '../../db/jobs/job-view.js';
import type { StoredJob } from '../../db/jobs/job-columns.js';
import { findJobWebhookTargets } from '../../db/jobs/find-jobs.js';
import { insertDeliveries, type NewDelivery } from '../../db/repositories/webhook-deliveries.js';
import { countWebhookEndpoints } from '../../db/repositories/webhook-endpoints.js';
import type { WebhookEvent } from '../../db/entities/webhook-endpoint.entity.js';
import type { JobDefinition } from '../../jobs/define-job.js';
import type { JobRegistry } from '../../jobs/registry.js';
import type { JobLifecycleHook, JobOutcome } from '../lifecycle.js';
import { messageIdFor } from '../../lib/webhooks/signing.js';
import { enqueueDeliveries, type WebhookQueue } from '../../queue/webhook-queue.js';
import { oversizedJsonBytes } from '../../jobs/result-limit.js';
import { storableText } from '../../jobs/storable-text.js';
import { errorText } from '../processor.js';

/** How long a worker trusts its knowledge that a customer has (no) webhook endpoints. */
export const endpointCacheMs = 5_000;

/** The events a job's outcome emits: none until the outcome is final; a completed job also its type's `completionEvents`. */
export function eventsFor(definition: Pick<JobDefinition, 'completionEvents'> | undefined, outcome: JobOutcome): WebhookEvent[] {
  if (outcome.state === 'completed')
    return definition?.completionEvents ? ['job.completed', ...definition.completionEvents] : ['job.completed'];
  return outcome.final ? ['job.failed'] : [];
}

/**
 * The job as a webhook event carries it: the public view (db/jobs/job-view.ts) and a link to it, with the
 * result inline only up to `resultMaxBytes` of JSON. A bigger one is left out (`result_omitted`, `result_bytes`)
 * for the receiver to read with GET /jobs/:id: each event is stored once per receiver, and up to 50 endpoints
 * storing a 1 MiB result each would make one job write 50 MiB. The error is bounded and storable for the same reason.
 */
export function webhookJobView(job: StoredJob, resultMaxBytes: number) {
  const resultBytes = oversizedJsonBytes(job.result, resultMaxBytes);
  const view = jobView({
    ...job,
    result: resultBytes === null ? job.result : null,
    error: job.error && storableText(errorText(job.error)),
  });
  return {
    ...view,
    ...(resultBytes === null ? {} : { result_omitted: true as const, result_bytes: resultBytes }),
    links: { self: jobLocation(job.id) },
  };
}

export interface WebhookEmitterDeps {
  orm: MikroORM;
  queue: WebhookQueue;
  /** Where a job type's `completionEvents` are read. */
  registry: JobRegistry;
  /** WEBHOOK_RESULT_MAX_BYTES: the largest result an event carries inline. */
  resultMaxBytes: number;
}

/**
 * The lifecycle hook that turns a job's final outcome into deliveries: one per subscribed endpoint and
 * event, plus one per event for the job's own `webhook_url`. Deliveries are keyed by (job, receiver,
 * event), so a hook that runs twice sends nothing twice. Sending happens on the delivery queue, never here.
 */
export function webhookEmitter(deps: WebhookEmitterDeps): JobLifecycleHook & { forget(customerId: string): void } {
  // Most customers register no endpoint: remember that for a few seconds instead of asking per job.
  const endpointCounts = new Map<string, { count: number; expiresAt: number }>();
  const hasEndpoints = async (customerId: string): Promise<boolean> => {
    const cached = endpointCounts.get(customerId);
    if (cached && cached.expiresAt > Date.now()) return cached.count > 0;
    const count = await countWebhookEndpoints(deps.orm.em.fork(), customerId);
    if (endpointCounts.size > 10_000) endpointCounts.clear();
    endpointCounts.set(customerId, { count, expiresAt: Date.now() + endpointCacheMs });
    return count > 0;
  };
  return {
    name: 'webhooks',
    /** Endpoints of this customer changed (the API publishes it on the access-change channel). */
    forget: (customerId: string) => void endpointCounts.delete(customerId),
    async finished(bullJob, type, outcome) {
      const events = eventsFor(deps.registry.get(type), outcome);
      if (events.length === 0) return;
      if (!bullJob.data.hasWebhookUrl && !(await hasEndpoints(bullJob.data.customerId))) return;
      const em = deps.orm.em.fork();
      const targets = await findJobWebhookTargets(em, bullJob.id as string, bullJob.data.customerId, events);
      if (!targets) return;
      const { job, endpoints } = targets;
      const timestamp = new Date(job.finishedAt ?? Date.now()).toISOString();
      const data = { job: webhookJobView(job, deps.resultMaxBytes) };

      const rows: NewDelivery[] = [];
      const add = (event: WebhookEvent, endpointId: string | null, url: string) => {
        const id = uuidv7();
        rows.push({
          id,
          customerId: job.customerId,
          endpointId,
          jobId: job.id,
          url,
          eventType: event,
          payload: { type: event, timestamp, data },
          messageId: messageIdFor(id),
          dedupeKey: `${job.id}:${endpointId ?? 'webhook_url'}:${event}`,
        });
      };
      for (const event of events) {
        for (const endpoint of endpoints) if (endpoint.events.includes(event)) add(event, endpoint.id, endpoint.url);
        if (job.webhookUrl) add(event, null, job.webhookUrl);
      }
      // An endpoint deleted since the read above loses its delivery here; the others are stored and sent.
      await enqueueDeliveries(deps.queue, await insertDeliveries(em, rows));
    },
  };
}
