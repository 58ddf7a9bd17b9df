import type { EntityManager } from '@mikro-orm/postgresql';
import type { Substrate } from '../entities/substrate.entity.js';

/** What evaluation needs: the expression (immutable for a given id) or the constant value. */
export interface SubstrateDefinition {
  id: string;
  customerId: string;
  expressionType: Substrate['expressionType'];
  expression: string | null;
  value: number | null;
}

export async function findSubstrateDefinition(em: EntityManager, customerId: string, id: string): Promise<SubstrateDefinition | null> {
  const rows = await em.getConnection().execute<SubstrateDefinition[]>(
    `select id, customer_id as "customerId", expression_type as "expressionType", expression, value
       from substrates where id = ? and customer_id = ?`,
    [id, customerId],
  );
  return rows[0] ?? null;
}

/** Ids among `ids` that the customer owns. */
export async function existingSubstrateIds(em: EntityManager, customerId: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`select id from substrates where customer_id = ? and id in (?)`, [customerId, ids]);
  return new Set(rows.map((row) => row.id));
}
