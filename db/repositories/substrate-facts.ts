import type { EntityManager } from '@mikro-orm/postgresql';
import { substrateInvocationCounts } from '../jobs/job-stats.js';

/** Everything stored about one substrate that divide projects onto its dimensions. */
export interface SubstrateFacts {
  id: string;
  identity: string;
  expressionType: 'expression' | 'constant';
  expression: string | null;
  value: number | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
  invocations: { total: number; completed: number; failed: number; first: Date | null; last: Date | null; lastDay: number };
  relationships: { outgoing: Record<string, number>; incoming: Record<string, number> };
}

export async function gatherSubstrateFacts(em: EntityManager, customerId: string, id: string): Promise<SubstrateFacts | null> {
  const connection = em.getConnection();
  const [substrate] = await connection.execute<Array<Omit<SubstrateFacts, 'invocations' | 'relationships'>>>(
    `select id, identity, expression_type as "expressionType", expression, value, metadata,
            created_at as "createdAt", updated_at as "updatedAt"
       from substrates where id = ? and customer_id = ?`,
    [id, customerId],
  );
  if (!substrate) return null;
  const invocations = await substrateInvocationCounts(em, customerId, id);
  return {
    ...substrate,
    createdAt: new Date(substrate.createdAt),
    updatedAt: new Date(substrate.updatedAt),
    invocations: {
      total: Number(invocations?.total ?? 0),
      completed: Number(invocations?.completed ?? 0),
      failed: Number(invocations?.failed ?? 0),
      first: invocations?.first ? new Date(invocations.first) : null,
      last: invocations?.last ? new Date(invocations.last) : null,
      lastDay: Number(invocations?.last_day ?? 0),
    },
    relationships: await relationshipCounts(em, customerId, id),
  };
}

/** Relationship counts by type in each direction. */
async function relationshipCounts(em: EntityManager, customerId: string, id: string): Promise<SubstrateFacts['relationships']> {
  const rows = await em.getConnection().execute<Array<{ direction: 'outgoing' | 'incoming'; type: string; count: string }>>(
    `select 'outgoing' as direction, type, count(*) as count from relationships where customer_id = ? and source_id = ? group by type
     union all
     select 'incoming' as direction, type, count(*) as count from relationships where customer_id = ? and target_id = ? group by type`,
    [customerId, id, customerId, id],
  );
  const counts: SubstrateFacts['relationships'] = { outgoing: {}, incoming: {} };
  for (const row of rows) counts[row.direction][row.type] = Number(row.count);
  return counts;
}
