import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Pauses (true) or resumes (false) a customer's work. Answers the customer's `paused_at` after the change,
 * or undefined when there is no such customer or it was deleted (offboarded).
 */
export async function setCustomerPaused(
  em: EntityManager,
  customerId: string,
  paused: boolean,
): Promise<{ pausedAt: Date | null } | undefined> {
  const rows = await em.execute<Array<{ pausedAt: Date | null }>>(
    `update customers set paused_at = ${paused ? 'coalesce(paused_at, now())' : 'null'} where id = ? and deleted_at is null returning paused_at as "pausedAt"`,
    [customerId],
  );
  return rows[0];
}

/** The ids of every paused customer (few: a quarantine is an exception). */
export async function pausedCustomerIds(em: EntityManager): Promise<string[]> {
  const rows = await em.execute<Array<{ id: string }>>(`select id from customers where paused_at is not null`);
  return rows.map((row) => row.id);
}
