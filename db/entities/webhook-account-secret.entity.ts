import { EntitySchema } from '@mikro-orm/core';

/** The customer's account secret: signs deliveries to a job's own `webhook_url`. Created on first use, rotated on request. */
export interface WebhookAccountSecret {
  customerId: string;
  encryptedSecret: string;
  createdAt: Date;
}

export const WebhookAccountSecretSchema = new EntitySchema<WebhookAccountSecret>({
  name: 'WebhookAccountSecret',
  tableName: 'webhook_account_secrets',
  properties: {
    customerId: { type: 'uuid', primary: true },
    encryptedSecret: { type: 'text' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
