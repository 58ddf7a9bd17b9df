import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebhookEndpoint, WebhookEvent } from '../entities/webhook-endpoint.entity.js';
import { inTransaction } from '../transaction.js';

const endpointColumns = `id, customer_id as "customerId", url, events, encrypted_secret as "encryptedSecret", created_at as "createdAt"`;

export async function countWebhookEndpoints(em: EntityManager, customerId: string): Promise<number> {
  const [row] = await em
    .getConnection()
    .execute<Array<{ count: string }>>(`select count(*) as count from webhook_endpoints where customer_id = ?`, [customerId]);
  return Number(row?.count ?? 0);
}

/**
 * Registers the endpoint unless the customer already has `maxPerCustomer`; null then. A per-customer
 * advisory lock makes the count and the insert one step, so parallel creates cannot pass the limit.
 */
export async function insertWebhookEndpointWithinLimit(
  em: EntityManager,
  row: { id: string; customerId: string; url: string; events: WebhookEvent[]; encryptedSecret: string },
  maxPerCustomer: number,
): Promise<WebhookEndpoint | null> {
  return inTransaction(em, async (tx) => {
    const connection = tx.getConnection();
    const ctx = tx.getTransactionContext();
    await connection.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`webhook_endpoints:${row.customerId}`], 'all', ctx);
    // A statement of its own after the lock, so its snapshot sees every endpoint committed before it.
    const [inserted] = await connection.execute<WebhookEndpoint[]>(
      `insert into webhook_endpoints (id, customer_id, url, events, encrypted_secret)
       select ?, ?, ?, array[?]::text[], ?
        where (select count(*) from webhook_endpoints where customer_id = ?) < ?
       returning ${endpointColumns}`,
      [row.id, row.customerId, row.url, row.events, row.encryptedSecret, row.customerId, maxPerCustomer],
      'all',
      ctx,
    );
    return inserted ?? null;
  });
}

export async function findWebhookEndpoint(em: EntityManager, customerId: string, id: string): Promise<WebhookEndpoint | null> {
  const rows = await em
    .getConnection()
    .execute<WebhookEndpoint[]>(`select ${endpointColumns} from webhook_endpoints where id = ? and customer_id = ?`, [id, customerId]);
  return rows[0] ?? null;
}

/** Newest first, keyset-paginated on the UUIDv7 id. */
export async function listWebhookEndpoints(
  em: EntityManager,
  customerId: string,
  beforeId: string | undefined,
  limit: number,
): Promise<WebhookEndpoint[]> {
  const params: unknown[] = [customerId];
  if (beforeId) params.push(beforeId);
  params.push(limit);
  return em
    .getConnection()
    .execute<WebhookEndpoint[]>(
      `select ${endpointColumns} from webhook_endpoints where customer_id = ? ${beforeId ? 'and id < ?' : ''} order by id desc limit ?`,
      params,
    );
}

/** Deletes the endpoint and (cascading) its deliveries; false when the customer has no such endpoint. */
export async function deleteWebhookEndpoint(em: EntityManager, customerId: string, id: string): Promise<boolean> {
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`delete from webhook_endpoints where id = ? and customer_id = ? returning id`, [id, customerId]);
  return rows.length > 0;
}

export interface AccountSecretRow {
  encryptedSecret: string;
  createdAt: Date;
}

/** The customer's account secret, created from `make()` on first use (concurrent first uses agree on one). */
export async function ensureAccountSecret(em: EntityManager, customerId: string, make: () => string): Promise<AccountSecretRow> {
  const connection = em.getConnection();
  const select = () =>
    connection.execute<AccountSecretRow[]>(
      `select encrypted_secret as "encryptedSecret", created_at as "createdAt" from webhook_account_secrets where customer_id = ?`,
      [customerId],
    );
  const [existing] = await select();
  if (existing) return existing;
  await connection.execute(
    `insert into webhook_account_secrets (customer_id, encrypted_secret) values (?, ?) on conflict (customer_id) do nothing`,
    [customerId, make()],
  );
  const [created] = await select();
  return created as AccountSecretRow;
}

/** Replaces the account secret; deliveries signed from now on use the new one. */
export async function rotateAccountSecret(em: EntityManager, customerId: string, encryptedSecret: string): Promise<AccountSecretRow> {
  const [row] = await em.getConnection().execute<AccountSecretRow[]>(
    `insert into webhook_account_secrets (customer_id, encrypted_secret) values (?, ?)
     on conflict (customer_id) do update set encrypted_secret = excluded.encrypted_secret, created_at = now()
     returning encrypted_secret as "encryptedSecret", created_at as "createdAt"`,
    [customerId, encryptedSecret],
  );
  return row as AccountSecretRow;
}
