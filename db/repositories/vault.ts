import type { EntityManager } from '@mikro-orm/postgresql';
import { uuidv7 } from '../../lib/uuid.js';
import { readInBatches } from '../cursor.js';
import { inTransaction } from '../transaction.js';
import type { Tier } from '../entities/service-instance.entity.js';

export interface VaultKeyRow {
  customerId: string;
  /** Exactly `api_keys.encrypted_key`: base64(iv ‖ ciphertext ‖ tag) under VAULT_KEY. */
  encryptedKey: string;
  tier: Tier;
  serviceType: string;
}

/**
 * The keys the edge proxy may accept: not revoked, not expired, of a service the customer has enabled and
 * that is not suspended. One consistent snapshot (one cursor), in a stable order, handed to `onBatch`
 * `batchRows` at a time (awaited before the next batch is read): a vault of a million keys costs the worker
 * one batch of memory and no long hold of its event loop. Stops between batches once `signal` aborts. Returns
 * the keys read.
 */
export async function forEachActiveVaultKeyBatch(
  em: EntityManager,
  batchRows: number,
  onBatch: (rows: VaultKeyRow[]) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  return inTransaction(em, async (tx) => {
    await tx.execute('set transaction read only');
    return readInBatches<VaultKeyRow>(
      tx,
      `select k.customer_id as "customerId", k.encrypted_key as "encryptedKey", s.tier, k.service_type as "serviceType"
         from api_keys k
         join service_instances s on s.customer_id = k.customer_id and s.service_type = k.service_type
        where k.revoked_at is null and (k.expires_at is null or k.expires_at > now())
          and s.enabled and s.suspended_reason is null
        order by k.customer_id, k.service_type, k.id`,
      [],
      batchRows,
      onBatch,
      signal,
    );
  });
}

export interface VaultExportRecord {
  id: string;
  path: string;
  rowCount: number;
  bytes: number;
  sha256: string;
  createdAt: string;
}

export async function recordVaultExport(
  em: EntityManager,
  file: { path: string; rowCount: number; bytes: number; sha256: string },
): Promise<VaultExportRecord> {
  const [row] = await em.execute<VaultExportRecord[]>(
    `insert into vault_exports (id, path, row_count, bytes, sha256) values (?, ?, ?, ?, ?)
     returning id, path, row_count as "rowCount", bytes, sha256, created_at as "createdAt"`,
    [uuidv7(), file.path, file.rowCount, file.bytes, file.sha256],
  );
  return row!;
}
