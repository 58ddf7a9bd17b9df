import type { EntityManager } from '@mikro-orm/postgresql';

/** One entry of the admin audit log, as written. */
export interface AdminAuditEntry {
  adminUserId: string | null;
  action: string;
  customerId?: string | null;
  details: unknown;
}

/** An entry as read back. */
export interface AdminAuditRow {
  id: string;
  at: Date;
  adminUserId: string | null;
  action: string;
  customerId: string | null;
  details: unknown;
}

export async function recordAdminAction(em: EntityManager, entry: AdminAuditEntry): Promise<void> {
  await em.execute(`insert into admin_audit (admin_user_id, action, customer_id, details) values (?, ?, ?, ?::jsonb)`, [
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
       from admin_audit ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit ?`,
    params,
  );
}
