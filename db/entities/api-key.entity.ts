import { EntitySchema } from '@mikro-orm/core';

/** An API key: SHA-256 hash for lookup, AES-256-GCM ciphertext (base64 iv‖ct‖tag under VAULT_KEY) for the vault export. */
export interface ApiKey {
  id: string;
  customerId: string;
  name: string;
  serviceType: string;
  prefix: string;
  keyHash: string;
  encryptedKey: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

export const ApiKeySchema = new EntitySchema<ApiKey>({
  name: 'ApiKey',
  tableName: 'api_keys',
  indexes: [
    // The tier's cap counts a customer's live keys (db/repositories/api-keys.ts) without reading the revoked
    // ones, however many a customer has revoked.
    {
      name: 'api_keys_customer_live_index',
      expression: `create index "api_keys_customer_live_index" on "api_keys" ("customer_id", "expires_at") where "revoked_at" is null`,
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid', index: true },
    name: { type: 'text' },
    serviceType: { type: 'text' },
    prefix: { type: 'text' },
    keyHash: { type: 'text', unique: true },
    encryptedKey: { type: 'text' },
    expiresAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    revokedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
