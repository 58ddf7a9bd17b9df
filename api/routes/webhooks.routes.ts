import type { EntityManager } from '@mikro-orm/postgresql';
import { Router } from 'express';
import { uuidv7 } from '../../lib/uuid.js';
import { z } from 'zod';
import { webhookEvents, type WebhookEndpoint } from '../../db/entities/webhook-endpoint.entity.js';
import { findJob } from '../../db/jobs/find-jobs.js';
import {
  findDelivery,
  listDeliveries,
  listJobDeliveries,
  restartDelivery,
  type DeliveryWithAttempts,
} from '../../db/repositories/webhook-deliveries.js';
import {
  deleteWebhookEndpoint,
  enableWebhookEndpoint,
  ensureAccountSecret,
  findWebhookEndpoint,
  insertWebhookEndpointWithinLimit,
  listWebhookEndpoints,
  rotateAccountSecret,
  type AccountSecretRow,
} from '../../db/repositories/webhook-endpoints.js';
import { newWebhookSecret } from '../../lib/webhooks/signing.js';
import { principalOf } from '../auth/authenticate.js';
import { decryptSecret, encryptSecret } from '../../lib/crypto.js';
import type { ApiDeps } from '../deps.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { notFound, ProblemError } from '../problems.js';
import { assertWebhookTarget, webhookUrlSchema } from '../webhook-target.js';
import { parseInput, refuseBodyFields, refuseQueryFields } from '../validate.js';
import { isoTime } from '../../lib/iso-time.js';

/** Endpoints one customer may register. */
export const maxWebhookEndpoints = 50;

export const createWebhookBody = z.strictObject({
  url: webhookUrlSchema,
  events: z
    .array(z.enum(webhookEvents))
    .min(1, 'subscribe to at least one event')
    .transform((events) => [...new Set(events)]),
});
export const listQuery = z.strictObject({ ...paginationQuery });
export const endpointParams = z.object({ id: z.uuid('a webhook id is a UUID') });
export const jobDeliveriesParams = z.object({ id: z.uuid('a job id is a UUID') });
export const deliveryParams = z.object({ id: z.uuid('a webhook id is a UUID'), delivery_id: z.uuid('a delivery id is a UUID') });

const iso = (value: Date | string | null): string | null => (value === null ? null : isoTime(value));

/** `closed` (delivering), `open` (holding deliveries back until `open_until`), `half_open` (the next delivery is a trial). */
export function breakerState(endpoint: Pick<WebhookEndpoint, 'breakerOpenUntil'>, now = Date.now()): 'closed' | 'open' | 'half_open' {
  if (endpoint.breakerOpenUntil === null || endpoint.breakerOpenUntil === undefined) return 'closed';
  return new Date(endpoint.breakerOpenUntil).getTime() > now ? 'open' : 'half_open';
}

export function endpointView(endpoint: WebhookEndpoint) {
  return {
    id: endpoint.id,
    url: endpoint.url,
    events: endpoint.events,
    created_at: iso(endpoint.createdAt) as string,
    /** `disabled`: a long failure stopped deliveries (see `disabled_reason`); POST /webhooks/:id/enable resumes them. */
    state: endpoint.disabledAt ? ('disabled' as const) : ('active' as const),
    disabled_at: iso(endpoint.disabledAt ?? null),
    disabled_reason: endpoint.disabledReason ?? null,
    breaker: {
      state: breakerState(endpoint),
      consecutive_failures: endpoint.consecutiveFailures ?? 0,
      failing_since: iso(endpoint.failingSince ?? null),
      open_until: iso(endpoint.breakerOpenUntil ?? null),
    },
  };
}

export function deliveryView(delivery: DeliveryWithAttempts) {
  return {
    id: delivery.id,
    event_type: delivery.eventType,
    /** The Standard Webhooks `webhook-id` header: the same on every attempt and redelivery. */
    webhook_id: delivery.messageId,
    job_id: delivery.jobId,
    /** Null for the job's own `webhook_url`. */
    endpoint_id: delivery.endpointId,
    state: delivery.state,
    payload: delivery.payload,
    attempts: delivery.attemptLog,
    created_at: iso(delivery.createdAt) as string,
    finished_at: iso(delivery.finishedAt),
  };
}

export function webhooksRoutes(deps: ApiDeps): Router {
  const router = Router();
  const sealed = (secret: string) => encryptSecret(deps.config.vaultKey, secret);
  const secretView = (row: AccountSecretRow) => ({
    secret: decryptSecret(deps.config.vaultKey, row.encryptedSecret),
    created_at: iso(row.createdAt) as string,
  });

  router.post('/webhooks', async (req, res) => {
    const principal = principalOf(req);
    const body = parseInput(createWebhookBody, req.body, 'body');
    await assertWebhookTarget(deps.config, body.url, 'body.url');
    const secret = newWebhookSecret();
    const endpoint = await insertWebhookEndpointWithinLimit(
      deps.orm.em.fork(),
      { id: uuidv7(), customerId: principal.customerId, url: body.url, events: body.events, encryptedSecret: sealed(secret) },
      maxWebhookEndpoints,
    );
    if (!endpoint) {
      const message = `would be a new endpoint; a customer may register at most ${maxWebhookEndpoints} (delete one first)`;
      throw new ProblemError('unprocessable', `a customer may register at most ${maxWebhookEndpoints} webhook endpoints`, {
        errors: [{ field: 'body.url', message }],
      });
    }
    await deps.principals.invalidateCustomer(principal.customerId); // workers forget they saw no endpoints
    res
      .status(201)
      .location(`/api/v1/webhooks/${endpoint.id}`)
      .json({ ...endpointView(endpoint), secret });
  });

  router.get('/webhooks', async (req, res) => {
    const principal = principalOf(req);
    const query = parseInput(listQuery, req.query, 'query');
    const beforeId = decodeCursor(query.cursor, z.uuid());
    const rows = await listWebhookEndpoints(deps.orm.em.fork(), principal.customerId, beforeId, query.limit + 1);
    res.json(page(rows, query.limit, endpointView, (row) => row.id));
  });

  // Registered before /webhooks/:id so "secret" is never read as an id.
  router.get('/webhooks/secret', async (req, res) => {
    refuseQueryFields(req.query);
    const principal = principalOf(req);
    const row = await ensureAccountSecret(deps.orm.em.fork(), principal.customerId, () => sealed(newWebhookSecret()));
    res.json(secretView(row));
  });

  router.post('/webhooks/secret', async (req, res) => {
    const principal = principalOf(req);
    refuseBodyFields(req.body);
    const row = await rotateAccountSecret(deps.orm.em.fork(), principal.customerId, sealed(newWebhookSecret()));
    res.json(secretView(row));
  });

  router.get('/webhooks/:id', async (req, res) => {
    refuseQueryFields(req.query);
    const principal = principalOf(req);
    const { id } = parseInput(endpointParams, req.params, 'params');
    const endpoint = await findWebhookEndpoint(deps.orm.em.fork(), principal.customerId, id);
    if (!endpoint) throw notFound(`webhook ${id}`);
    res.json(endpointView(endpoint));
  });

  router.delete('/webhooks/:id', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(endpointParams, req.params, 'params');
    refuseBodyFields(req.body);
    if (!(await deleteWebhookEndpoint(deps.orm.em.fork(), principal.customerId, id))) throw notFound(`webhook ${id}`);
    await deps.principals.invalidateCustomer(principal.customerId);
    res.status(204).end();
  });

  router.post('/webhooks/:id/enable', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(endpointParams, req.params, 'params');
    refuseBodyFields(req.body);
    const endpoint = await enableWebhookEndpoint(deps.orm.em.fork(), principal.customerId, id);
    if (!endpoint) throw notFound(`webhook ${id}`);
    await deps.principals.invalidateCustomer(principal.customerId);
    res.json(endpointView(endpoint));
  });

  router.get('/webhooks/:id/deliveries', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(endpointParams, req.params, 'params');
    const query = parseInput(listQuery, req.query, 'query');
    const beforeId = decodeCursor(query.cursor, z.uuid());
    const em = deps.orm.em.fork();
    if (!(await findWebhookEndpoint(em, principal.customerId, id))) throw notFound(`webhook ${id}`);
    const rows = await listDeliveries(em, id, beforeId, query.limit + 1);
    res.json(page(rows, query.limit, deliveryView, (row) => row.id));
  });

  router.post('/webhooks/:id/deliveries/:delivery_id/redeliver', async (req, res) => {
    const principal = principalOf(req);
    const { id, delivery_id: deliveryId } = parseInput(deliveryParams, req.params, 'params');
    refuseBodyFields(req.body);
    const em = deps.orm.em.fork();
    if (!(await findWebhookEndpoint(em, principal.customerId, id))) throw notFound(`webhook ${id}`);
    const delivery = await findDelivery(em, id, deliveryId);
    if (!delivery) throw notFound(`delivery ${deliveryId}`);
    // A new BullMQ job (a full retry schedule) under the same webhook-id; named by the attempt count so a
    // double click enqueues once. The superseded job, if still waiting, is removed; if running, it finds
    // itself stale next time and stops.
    const queueJobId = `${delivery.id}-r${delivery.attempts}`;
    const previous = await restartDelivery(em, delivery.id, queueJobId);
    if (previous && previous !== queueJobId) await (await deps.webhookQueue.getJob(previous))?.remove().catch(() => undefined);
    await deps.webhookQueue.add('deliver', { deliveryId: delivery.id }, { jobId: queueJobId });
    const restarted = await findDelivery(em, id, deliveryId);
    res.status(202).json(deliveryView(restarted ?? delivery));
  });

  return router;
}

/** A page of a job's deliveries, newest first, each with its attempts. */
export async function jobDeliveriesPage(em: EntityManager, customerId: string, jobId: string, query: z.output<typeof listQuery>) {
  const rows = await listJobDeliveries(em, customerId, jobId, decodeCursor(query.cursor, z.uuid()), query.limit + 1);
  return page(rows, query.limit, deliveryView, (row) => row.id);
}

/** GET /jobs/:id/webhook-deliveries: the job's deliveries (mounted under /jobs, beside the job routes). */
export function jobDeliveriesRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/jobs/:id/webhook-deliveries', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(jobDeliveriesParams, req.params, 'params');
    const query = parseInput(listQuery, req.query, 'query');
    const em = deps.orm.em.fork();
    if (!(await findJob(em, principal.customerId, id))) throw notFound(`job ${id}`);
    res.json(await jobDeliveriesPage(em, principal.customerId, id, query));
  });

  return router;
}
