import type { EntityManager } from '@mikro-orm/postgresql';
import { uuidv7 } from '../../lib/uuid.js';
import type { ApiKey } from '../entities/api-key.entity.js';
import { lockCustomerScope } from '../transaction.js';

/** An API key as lists show it: never the hash, the ciphertext or the key. */
export type ApiKeyRow = Pick<ApiKey, 'id' | 'name' | 'serviceType' | 'prefix' | 'expiresAt' | 'revokedAt' | 'createdAt'>;

const columns = `id, name, service_type as "serviceType", prefix, expires_at as "expiresAt", revoked_at as "revokedAt", created_at as "createdAt"`;

export type NewApiKey = Pick<ApiKey, 'customerId' | 'name' | 'serviceType' | 'prefix' | 'keyHash' | 'encryptedKey' | 'expiresAt'>;

export async function insertApiKey(em: EntityManager, key: NewApiKey): Promise<ApiKeyRow> {
  const [row] = await em.execute<ApiKeyRow[]>(
    `insert into api_keys (id, customer_id, name, service_type, prefix, key_hash, encrypted_key, expires_at)
     values (?, ?, ?, ?, ?, ?, ?, ?::timestamptz)
     returning ${columns}`,
    [uuidv7(), key.customerId, key.name, key.serviceType, key.prefix, key.keyHash, key.encryptedKey, key.expiresAt?.toISOString() ?? null],
  );
  return row!;
}

/** A key the customer may still use: neither revoked nor expired. What the tier's cap counts, and what the vault holds. */
const live = `revoked_at is null and (expires_at is null or expires_at > now())`;

/** The customer scope (`lockCustomerScope`) its API keys are created in, one at a time. */
export const apiKeysScope = 'api_keys';

/** The cap stopped the insert: the customer already has `had` live keys of at most `cap`. */
export interface ApiKeyCapReached {
  capReached: { cap: number; had: number; adding: 1 };
}

/**
 * `insertApiKey` unless the customer already has `cap` live keys (revoked and expired ones take no room).
 * Must run inside a transaction (`tx`): a per-customer advisory lock makes the count and the insert one step, so
 * concurrent creates cannot pass the cap; a rotation that revoked the old key earlier in `tx` has its room back.
 * Open `tx` inside `queuedInCustomerScope(apiKeysScope, …)`, so a customer's burst waits without connections.
 */
export async function insertApiKeyWithinCap(tx: EntityManager, key: NewApiKey, cap: number): Promise<ApiKeyRow | ApiKeyCapReached> {
  await lockCustomerScope(tx, apiKeysScope, key.customerId);
  const [counted] = await tx.execute<Array<{ count: string }>>(`select count(*) as count from api_keys where customer_id = ? and ${live}`, [
    key.customerId,
  ]);
  const had = Number(counted?.count ?? 0);
  if (had >= cap) return { capReached: { cap, had, adding: 1 } };
  return insertApiKey(tx, key);
}

/** Newest first, keyset-paginated on the UUIDv7 id; revoked keys included (with `revokedAt`). */
export async function listApiKeys(
  em: EntityManager,
  customerId: string,
  beforeId: string | undefined,
  limit: number,
): Promise<ApiKeyRow[]> {
  const params: unknown[] = [customerId];
  let where = 'customer_id = ?';
  if (beforeId) {
    where += ' and id < ?';
    params.push(beforeId);
  }
  params.push(limit);
  return em.execute<ApiKeyRow[]>(`select ${columns} from api_keys where ${where} order by id desc limit ?`, params);
}

/** The customer's key, locked for the rest of the transaction; null for unknown ids and other customers' keys. */
export async function lockApiKey(em: EntityManager, customerId: string, id: string): Promise<ApiKeyRow | null> {
  const [row] = await em.execute<ApiKeyRow[]>(`select ${columns} from api_keys where id = ? and customer_id = ? for update`, [
    id,
    customerId,
  ]);
  return row ?? null;
}

/** Revokes the customer's key; false when it is unknown, another customer's, or already revoked. */
export async function revokeApiKey(em: EntityManager, customerId: string, id: string): Promise<boolean> {
  const rows = await em.execute<Array<{ id: string }>>(
    `update api_keys set revoked_at = now() where id = ? and customer_id = ? and revoked_at is null returning id`,
    [id, customerId],
  );
  return rows.length > 0;
}

export async function apiKeyExists(em: EntityManager, customerId: string, id: string): Promise<boolean> {
  const rows = await em.execute<Array<{ id: string }>>(`select id from api_keys where id = ? and customer_id = ?`, [id, customerId]);
  return rows.length > 0;
}
