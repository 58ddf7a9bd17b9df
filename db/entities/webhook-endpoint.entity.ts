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
  /** Deliveries that failed in a row (errors, non-2xx, timeouts); a success resets it. */
  consecutiveFailures: number;
  /** When the current run of failures began; null while the endpoint answers. */
  failingSince: Date | null;
  /** The circuit breaker holds deliveries back until then; past it, one trial delivery goes out (half-open). Null: closed. */
  breakerOpenUntil: Date | null;
  /** How often the breaker opened in the current run of failures (each cool-down doubles, up to an hour). */
  breakerOpens: number;
  /** Set when a long failure disabled the endpoint: nothing is sent to it until it is enabled again. */
  disabledAt: Date | null;
  disabledReason: string | null;
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
    consecutiveFailures: { type: 'integer', default: 0 },
    failingSince: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    breakerOpenUntil: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    breakerOpens: { type: 'integer', default: 0 },
    disabledAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    disabledReason: { type: 'text', nullable: true },
  },
});
