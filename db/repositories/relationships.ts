import type { EntityManager } from '@mikro-orm/postgresql';
import type { Relationship, RelationshipType } from '../entities/relationship.entity.js';

const columns = `id, customer_id as "customerId", source_id as "sourceId", target_id as "targetId", type, metadata, created_at as "createdAt"`;

/** Creates the edge, or returns the existing identical one (`created: false`). */
export async function createRelationship(
  em: EntityManager,
  edge: Omit<Relationship, 'createdAt'>,
): Promise<{ relationship: Relationship; created: boolean }> {
  const connection = em.getConnection();
  const [inserted] = await connection.execute<Relationship[]>(
    `insert into relationships (id, customer_id, source_id, target_id, type, metadata) values (?, ?, ?, ?, ?, ?::jsonb)
     on conflict (customer_id, source_id, target_id, type) do nothing returning ${columns}`,
    [edge.id, edge.customerId, edge.sourceId, edge.targetId, edge.type, JSON.stringify(edge.metadata)],
  );
  if (inserted) return { relationship: inserted, created: true };
  const [existing] = await connection.execute<Relationship[]>(
    `select ${columns} from relationships where customer_id = ? and source_id = ? and target_id = ? and type = ?`,
    [edge.customerId, edge.sourceId, edge.targetId, edge.type],
  );
  if (!existing) throw new Error('relationship vanished between insert and select');
  return { relationship: existing, created: false };
}

export async function findRelationship(em: EntityManager, customerId: string, id: string): Promise<Relationship | null> {
  const rows = await em
    .getConnection()
    .execute<Relationship[]>(`select ${columns} from relationships where id = ? and customer_id = ?`, [id, customerId]);
  return rows[0] ?? null;
}

export async function deleteRelationship(em: EntityManager, customerId: string, id: string): Promise<boolean> {
  const rows = await em
    .getConnection()
    .execute<unknown[]>(`delete from relationships where id = ? and customer_id = ? returning id`, [id, customerId]);
  return rows.length > 0;
}

/** One substrate's edges in one direction, oldest first, keyset-paginated on (created_at, id). */
export async function listEdges(
  em: EntityManager,
  customerId: string,
  substrateId: string,
  direction: 'outgoing' | 'incoming',
  after: { createdAt: string; id: string } | undefined,
  limit: number,
): Promise<Relationship[]> {
  const column = direction === 'outgoing' ? 'source_id' : 'target_id';
  const params: unknown[] = [customerId, substrateId];
  let where = `customer_id = ? and ${column} = ?`;
  if (after) {
    where += ` and (created_at, id) > (?::timestamptz, ?::uuid)`;
    params.push(after.createdAt, after.id);
  }
  params.push(limit);
  return em
    .getConnection()
    .execute<Relationship[]>(`select ${columns} from relationships where ${where} order by created_at, id limit ?`, params);
}

export interface Traversal {
  nodes: Array<{ substrateId: string; depth: number }>;
  edges: Relationship[];
}

/** Upper bound on edges one traversal returns, whatever the depth. */
export const maxTraversalEdges = 10_000;

/**
 * Breadth-first walk with a recursive CTE. Cycle-safe: a path never revisits a node (the path array),
 * depth-bounded, and capped at `maxTraversalEdges` edges.
 */
export async function traverse(
  em: EntityManager,
  customerId: string,
  start: string,
  direction: 'outgoing' | 'incoming' | 'both',
  maxDepth: number,
  types: RelationshipType[] | undefined,
): Promise<Traversal> {
  const typeFilter = types && types.length > 0 ? `and r.type in (${types.map(() => '?').join(', ')})` : '';
  const typeParams = types && types.length > 0 ? types : [];
  const step =
    direction === 'outgoing'
      ? { join: 'r.source_id = w.node', next: 'r.target_id' }
      : direction === 'incoming'
        ? { join: 'r.target_id = w.node', next: 'r.source_id' }
        : {
            join: '(r.source_id = w.node or r.target_id = w.node)',
            next: 'case when r.source_id = w.node then r.target_id else r.source_id end',
          };
  const rows = await em.getConnection().execute<Array<{ edge_id: string; node: string; depth: number }>>(
    `with recursive walk(node, depth, path, edge_id) as (
       select ?::text, 0, array[?::text], null::uuid
       union all
       select ${step.next}, w.depth + 1, w.path || ${step.next}, r.id
         from walk w
         join relationships r on ${step.join} and r.customer_id = ? ${typeFilter}
        where w.depth < ? and not (${step.next} = any(w.path))
     )
     select edge_id, node, depth from walk limit ?`,
    [start, start, customerId, ...typeParams, maxDepth, maxTraversalEdges + 1],
  );
  const depthByNode = new Map<string, number>();
  const edgeIds = new Set<string>();
  for (const row of rows) {
    const known = depthByNode.get(row.node);
    if (known === undefined || row.depth < known) depthByNode.set(row.node, row.depth);
    if (row.edge_id) edgeIds.add(row.edge_id);
  }
  const edges =
    edgeIds.size === 0
      ? []
      : await em
          .getConnection()
          .execute<Relationship[]>(`select ${columns} from relationships where customer_id = ? and id in (?) order by created_at, id`, [
            customerId,
            [...edgeIds],
          ]);
  return {
    nodes: [...depthByNode]
      .map(([substrateId, depth]) => ({ substrateId, depth }))
      .sort((a, b) => a.depth - b.depth || a.substrateId.localeCompare(b.substrateId)),
    edges,
  };
}

export interface RelationshipStats {
  total: number;
  byType: Record<string, number>;
  substratesWithRelationships: number;
  averageOutDegree: number;
}

export async function relationshipStats(em: EntityManager, customerId: string): Promise<RelationshipStats> {
  const connection = em.getConnection();
  const byType = await connection.execute<Array<{ type: string; count: string }>>(
    `select type, count(*) as count from relationships where customer_id = ? group by type`,
    [customerId],
  );
  const [nodes] = await connection.execute<Array<{ sources: string; touched: string }>>(
    `select count(distinct source_id) as sources,
            (select count(*) from (select source_id from relationships where customer_id = ? union select target_id from relationships where customer_id = ?) t) as touched
       from relationships where customer_id = ?`,
    [customerId, customerId, customerId],
  );
  const total = byType.reduce((sum, row) => sum + Number(row.count), 0);
  const sources = Number(nodes?.sources ?? 0);
  return {
    total,
    byType: Object.fromEntries(byType.map((row) => [row.type, Number(row.count)])),
    substratesWithRelationships: Number(nodes?.touched ?? 0),
    averageOutDegree: sources === 0 ? 0 : Math.round((total / sources) * 100) / 100,
  };
}
