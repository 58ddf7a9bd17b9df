import type { EntityManager } from '@mikro-orm/postgresql';

export interface AdminCustomerRow {
  id: string;
  name: string;
  createdAt: string;
  /** Set once an admin deleted (offboarded) the customer. */
  deletedAt: string | null;
  balanceUsdCents: number;
  currentMonthChargedUsdCents: number;
  maxMonthlyUsdCents: number | null;
  /** When an admin paused (quarantined) the customer's work; null: not paused. */
  pausedAt: string | null;
  services: Array<{ service_type: string; tier: string; enabled: boolean; suspended_reason: string | null }>;
}

/** Customers with their money, services and pause, newest first, keyset-paginated on the UUIDv7 id. For admins. */
export async function listCustomersForAdmin(em: EntityManager, beforeId: string | undefined, limit: number): Promise<AdminCustomerRow[]> {
  const params: unknown[] = [];
  let where = '';
  if (beforeId) {
    where = 'where c.id < ?';
    params.push(beforeId);
  }
  params.push(limit);
  return em.execute<AdminCustomerRow[]>(
    `select c.id, c.name, c.created_at as "createdAt", c.deleted_at as "deletedAt",
            coalesce(a.balance_usd_cents, 0)::float8 as "balanceUsdCents",
            coalesce(a.current_month_charged_usd_cents, 0)::float8 as "currentMonthChargedUsdCents",
            c.max_monthly_usd_cents::float8 as "maxMonthlyUsdCents",
            c.paused_at as "pausedAt",
            coalesce((select jsonb_agg(jsonb_build_object('service_type', s.service_type, 'tier', s.tier, 'enabled', s.enabled, 'suspended_reason', s.suspended_reason) order by s.service_type)
                        from service_instances s where s.customer_id = c.id), '[]'::jsonb) as services
       from customers c
       left join escrow_accounts a on a.id = c.id::text
       ${where}
      order by c.id desc limit ?`,
    params,
  );
}

/** Which of these customer ids exist. */
export async function existingCustomerIds(em: EntityManager, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await em.execute<Array<{ id: string }>>(
    `select id from customers where id in (select (value #>> '{}')::uuid from jsonb_array_elements(?::jsonb))`,
    [JSON.stringify(ids)],
  );
  return new Set(rows.map((row) => row.id));
}
