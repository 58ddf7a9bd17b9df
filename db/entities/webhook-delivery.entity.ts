import { EntitySchema } from '@mikro-orm/core';

export const deliveryStates = ['pending', 'succeeded', 'failed'] as const;
export type DeliveryState = (typeof deliveryStates)[number];

/**
 * One event for one receiver: a registered endpoint, or (endpoint null) a job's own `webhook_url`.
 * `messageId` is the Standard Webhooks `webhook-id`, the same on every attempt and redelivery, so
 * receivers can drop duplicates. `dedupeKey` (job, receiver, event) makes emitting idempotent.
 */
export interface WebhookDelivery {
  id: string;
  customerId: string;
  endpointId: string | null;
  jobId: string | null;
  url: string;
  eventType: string;
  payload: unknown;
  messageId: string;
  dedupeKey: string;
  state: DeliveryState;
  attempts: number;
  /** The BullMQ job that carries it now (a redelivery gets a new one). */
  queueJobId: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export const WebhookDeliverySchema = new EntitySchema<WebhookDelivery>({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  indexes: [
    { name: 'webhook_deliveries_endpoint_id_id_index', properties: ['endpointId', 'id'] },
    // A job's deliveries (GET /jobs/:id/webhook-deliveries).
    { name: 'webhook_deliveries_job_id_index', properties: ['jobId'] },
    // The deliveries still to send, oldest first (UUIDv7), for the sweep that re-enqueues those BullMQ lost.
    {
      name: 'webhook_deliveries_pending_index',
      expression: `create index "webhook_deliveries_pending_index" on "webhook_deliveries" ("id") where "state" = 'pending'`,
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid', index: true },
    endpointId: { kind: 'm:1', entity: 'WebhookEndpoint', fieldName: 'endpoint_id', mapToPk: true, nullable: true, deleteRule: 'cascade' },
    jobId: { type: 'uuid', nullable: true },
    url: { type: 'text' },
    eventType: { type: 'text' },
    payload: { type: 'json' },
    messageId: { type: 'text' },
    dedupeKey: { type: 'text', unique: true },
    state: { type: 'text', default: 'pending' },
    attempts: { type: 'integer', default: 0 },
    queueJobId: { type: 'text', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    finishedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
  },
});
