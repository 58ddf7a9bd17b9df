import { EntitySchema } from '@mikro-orm/core';

/**
 * One admin action (a credit, a retry, a bulk cancel, a pause or resume, a cross-customer view): who did
 * it, to whom, with what. Append-only; read at GET /admin/audit.
 */
export interface AdminAudit {
  /** Monotonic, so the log pages newest first by id. */
  id: string;
  at: Date;
  /** The admin user (null when the call was made with an admin's API key). */
  adminUserId: string | null;
  /** e.g. `jobs.retry`, `jobs.cancel`, `jobs.view`, `customer.pause`, `customer.resume`, `customer.credit`. */
  action: string;
  /** The customer acted on, when the action names one. */
  customerId: string | null;
  /** The filters, counts and ids of the action, as the route saw them. */
  details: unknown;
}

export const AdminAuditSchema = new EntitySchema<AdminAudit>({
  name: 'AdminAudit',
  tableName: 'admin_audit',
  indexes: [{ name: 'admin_audit_customer_id_index', properties: ['customerId', 'id'] }],
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    at: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    adminUserId: { type: 'uuid', nullable: true },
    action: { type: 'text' },
    customerId: { type: 'uuid', nullable: true },
    details: { type: 'json' },
  },
});
