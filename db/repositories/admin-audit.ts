import type { EntityManager } from '@mikro-orm/postgresql';
import type { AdminAudit } from '../entities/admin-audit.entity.js';
import { asyncCommit } from '../jobs/job-columns.js';

/** One entry of the admin audit log, as written. */
export interface AdminAuditEntry {
  adminUserId: string | null;
  action: string;
  customerId?: string | null;
  details: unknown;
}

/** An entry as read back. */
export type AdminAuditRow = AdminAudit;

/**
 * Appends one entry. `durable: false` (for views, written on every page an admin reads) commits without
 * waiting for the disk: a crash in the next moments may lose the entry, never the action's effect.
 */
export async function recordAdminAction(em: EntityManager, entry: AdminAuditEntry, options: { durable?: boolean } = {}): Promise<void> {
  const insert = `insert into admin_audit (admin_user_id, action, customer_id, details) select ?, ?, ?, ?::jsonb`;
  await em.execute(options.durable === false ? `with ${asyncCommit} ${insert} from durability` : insert, [
    entry.adminUserId,
    entry.action,
    entry.customerId ?? null,
    JSON.stringify(entry.details ?? {}),
  ]);
}

export interface AdminAuditFilter {
  customerId?: string;
  action?: string;
  /** Only entries below this id (the cursor). */
  beforeId?: string;
  limit: number;
}

/** Newest first, keyset-paginated on the id. */
export async function listAdminActions(em: EntityManager, filter: AdminAuditFilter): Promise<AdminAuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    where.push(clause);
    params.push(value);
  };
  if (filter.customerId) add('customer_id = ?', filter.customerId);
  if (filter.action) add('action = ?', filter.action);
  if (filter.beforeId) add('id < ?', filter.beforeId);
  params.push(filter.limit);
  return em.execute<AdminAuditRow[]>(
    `select id::text as id, at, admin_user_id as "adminUserId", action, customer_id as "customerId", details
       from admin_audit ${where.length ? `where ${where.join(' and ')}` : ''} order by admin_audit.id desc limit ?`,
    params,
  );
}
