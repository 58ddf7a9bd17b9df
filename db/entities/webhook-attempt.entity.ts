import { EntitySchema } from '@mikro-orm/core';

/** One try at sending a delivery: what came back (or why nothing did) and how long it took. */
export interface WebhookAttempt {
  id: string;
  deliveryId: string;
  attempt: number;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  at: Date;
}

export const WebhookAttemptSchema = new EntitySchema<WebhookAttempt>({
  name: 'WebhookAttempt',
  tableName: 'webhook_attempts',
  uniques: [{ name: 'webhook_attempts_delivery_id_attempt_unique', properties: ['deliveryId', 'attempt'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    deliveryId: { kind: 'm:1', entity: 'WebhookDelivery', fieldName: 'delivery_id', mapToPk: true, deleteRule: 'cascade' },
    attempt: { type: 'integer' },
    statusCode: { type: 'integer', nullable: true },
    durationMs: { type: 'integer' },
    error: { type: 'text', nullable: true },
    at: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
