import { EntitySchema } from '@mikro-orm/core';

export const webhookEvents = ['job.completed', 'job.failed', 'batch.completed'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

/** A customer's registered receiver. The signing secret is kept encrypted (AES-256-GCM under VAULT_KEY) because we must sign with it. */
export interface WebhookEndpoint {
  id: string;
  customerId: string;
  url: string;
  events: WebhookEvent[];
  encryptedSecret: string;
  createdAt: Date;
}

export const WebhookEndpointSchema = new EntitySchema<WebhookEndpoint>({
  name: 'WebhookEndpoint',
  tableName: 'webhook_endpoints',
  indexes: [{ name: 'webhook_endpoints_customer_id_id_index', properties: ['customerId', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    url: { type: 'text' },
    events: { type: 'text[]', columnType: 'text[]' },
    encryptedSecret: { type: 'text' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
