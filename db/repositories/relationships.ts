import type { EntityManager } from '@mikro-orm/postgresql';
import type { Relationship, RelationshipType } from '../entities/relationship.entity.js';
import { microsecondTime } from '../cursor.js';
import { queryWithParameters } from '../query-with-parameters.js';
import { inCustomerScope } from '../transaction.js';

const columns = `id, customer_id as "customerId", source_id as "sourceId", target_id as "targetId", type, metadata, created_at as "createdAt"`;

/**
 * What `createRelationship` did: created the edge, found the identical one, found an end not the customer's, or
 * found the customer at its cap (`capReached`, the shape the API-key and substrate caps report).
 */
export type CreateRelationshipOutcome =
  | { kind: 'stored'; relationship: Relationship; created: boolean }
  | { kind: 'substrate-missing' }
  | { kind: 'cap-reached'; capReached: { cap: number; had: number; adding: 1 } };

/** PostgreSQL's SQLSTATE for a row whose foreign key names no row (here: a substrate deleted meanwhile). */
const foreignKeyViolation = '23503';

/** How many times an insert that met an identical edge looks again when that edge was deleted before it could be read. */
const attemptsAfterVanishedEdge = 3;

/**
 * Creates the edge, or returns the existing identical one (`created: false`); `substrate-missing` when either
 * end is not one of the customer's substrates; `cap-reached` when the customer already keeps `cap` relationships
 * (re-creating one it has still finds it). The insert itself requires both ends to be the customer's (one
 * statement, not a check and then an insert); a substrate deleted while the insert runs fails its foreign key
 * and is `substrate-missing` too, as is an identical edge gone (its substrate deleted) before it could be read
 * (an edge deleted alone is created again; after `attemptsAfterVanishedEdge` tries, `substrate-missing` all the same).
 * The count is `customer_relationship_counts` (kept by triggers); a per-customer advisory lock makes the check and
 * the insert one step, so concurrent creates cannot pass the cap.
 */
export async function createRelationship(
  em: EntityManager,
  edge: Omit<Relationship, 'createdAt'>,
  cap: number,
): Promise<CreateRelationshipOutcome> {
  try {
    return await inCustomerScope(em, 'relationships', edge.customerId, async (tx): Promise<CreateRelationshipOutcome> => {
      const [counted] = await tx.execute<Array<{ relationships: number }>>(
        `select relationships from customer_relationship_counts where customer_id = ?`,
        [edge.customerId],
      );
      const had = counted?.relationships ?? 0;
      if (had < cap) return await insertEdge(tx, edge);
      const existing = await findIdenticalEdge(tx, edge);
      if (existing) return { kind: 'stored', relationship: existing, created: false };
      // A wrong request is told so before it is told the cap.
      return (await endsOwned(tx, edge)) ? { kind: 'cap-reached', capReached: { cap, had, adding: 1 } } : { kind: 'substrate-missing' };
    });
  } catch (error) {
    // Both ends existed when the statement began, and one was deleted (committed) before its foreign key was checked.
    if ((error as { code?: unknown } | null)?.code === foreignKeyViolation) return { kind: 'substrate-missing' };
    throw error;
  }
}

const findIdenticalEdge = async (tx: EntityManager, edge: Omit<Relationship, 'createdAt'>): Promise<Relationship | undefined> =>
  (
    await tx.execute<Relationship[]>(
      `select ${columns} from relationships where customer_id = ? and source_id = ? and target_id = ? and type = ?`,
      [edge.customerId, edge.sourceId, edge.targetId, edge.type],
    )
  )[0];

/** Whether both ends of `edge` are substrates of its customer. */
async function endsOwned(tx: EntityManager, edge: Omit<Relationship, 'createdAt'>): Promise<boolean> {
  const [ends] = await tx.execute<Array<{ owned: boolean }>>(
    `select exists (select 1 from substrates where id = ? and customer_id = ?)
        and exists (select 1 from substrates where id = ? and customer_id = ?) as owned`,
    [edge.sourceId, edge.customerId, edge.targetId, edge.customerId],
  );
  return ends?.owned === true;
}

async function insertEdge(tx: EntityManager, edge: Omit<Relationship, 'createdAt'>): Promise<CreateRelationshipOutcome> {
  for (let attempt = 1; ; attempt++) {
    const [inserted] = await tx.execute<Relationship[]>(
      `insert into relationships (id, customer_id, source_id, target_id, type, metadata)
       select ?, ?, ?, ?, ?, ?::jsonb
        where exists (select 1 from substrates where id = ? and customer_id = ?)
          and exists (select 1 from substrates where id = ? and customer_id = ?)
       on conflict (customer_id, source_id, target_id, type) do nothing returning ${columns}`,
      [
        edge.id,
        edge.customerId,
        edge.sourceId,
        edge.targetId,
        edge.type,
        JSON.stringify(edge.metadata),
        edge.sourceId,
        edge.customerId,
        edge.targetId,
        edge.customerId,
      ],
    );
    if (inserted) return { kind: 'stored', relationship: inserted, created: true };
    const existing = await findIdenticalEdge(tx, edge);
    if (existing) return { kind: 'stored', relationship: existing, created: false };
    // Nothing inserted and nothing found: an end is not the customer's, or the identical edge the insert met was
    // deleted before it could be read (with its substrate, or alone: then the next attempt creates it).
    if (!(await endsOwned(tx, edge)) || attempt >= attemptsAfterVanishedEdge) return { kind: 'substrate-missing' };
  }
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
): Promise<Array<Relationship & { cursorAt: string }>> {
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
    .execute<Array<Relationship & { cursorAt: string }>>(
      `select ${columns}, ${microsecondTime('created_at')} as "cursorAt" from relationships where ${where} order by created_at, id limit ?`,
      params,
    );
}

export type TraversalDirection = 'outgoing' | 'incoming' | 'both';

export interface Traversal {
  /** Every substrate reached, at its shortest distance from the start. */
  nodes: Array<{ substrateId: string; depth: number }>;
  /** Every edge the walk follows out of a node nearer than `maxDepth`, back-edges to reached nodes too; oldest first. */
  edges: Relationship[];
}

/** Most edges one traversal may reach; past it the caller gets no partial answer. */
export const maxTraversalEdges = 10_000;

/** An edge as the walk sees it: which one, and its two ends. */
interface Step {
  id: string;
  sourceId: string;
  targetId: string;
}

/** Which end(s) of an edge the walk may step to. Both ends for `both`: the one already visited is skipped. */
const endsAhead: Record<TraversalDirection, (step: Step) => string[]> = {
  outgoing: (step) => [step.targetId],
  incoming: (step) => [step.sourceId],
  both: (step) => [step.sourceId, step.targetId],
};

/**
 * Breadth-first walk from `start`, one query per level, each node expanded once: the work grows with the
 * nodes and edges reached, not with the paths between them (a dense graph has billions of those).
 * Only the customer's relationships are followed, so only the customer's substrates are reached.
 *
 * Returns `'too-many-edges'` when more than `maxTraversalEdges` edges are within reach: the caller should
 * narrow the walk (a smaller `maxDepth`, fewer `types`) rather than get a silently partial graph.
 */
export async function traverse(
  em: EntityManager,
  customerId: string,
  start: string,
  direction: TraversalDirection,
  maxDepth: number,
  types: RelationshipType[] | undefined,
): Promise<Traversal | 'too-many-edges'> {
  const depthByNode = new Map<string, number>([[start, 0]]);
  const edgeIds = new Set<string>();
  let frontier = [start];
  for (let depth = 0; depth < maxDepth && frontier.length > 0; depth++) {
    // Each row is a distinct edge, so a level that fills the limit is past the cap. Not the budget left as the
    // limit: with `both`, a level reads again the edges that led to it.
    const steps = await stepsFrom(em, customerId, frontier, direction, types, maxTraversalEdges + 1);
    for (const step of steps) edgeIds.add(step.id);
    if (edgeIds.size > maxTraversalEdges) return 'too-many-edges';
    frontier = unvisitedEnds(steps, direction, depthByNode);
    for (const node of frontier) depthByNode.set(node, depth + 1);
  }
  return { nodes: nodesByDepth(depthByNode), edges: await edgesById(em, customerId, [...edgeIds]) };
}

/** The customer's edges (of `types`, if given) that leave any node of `frontier` in `direction`; at most `limit`. */
async function stepsFrom(
  em: EntityManager,
  customerId: string,
  frontier: string[],
  direction: TraversalDirection,
  types: RelationshipType[] | undefined,
  limit: number,
): Promise<Step[]> {
  const leavingFrontier = {
    outgoing: 'source_id = any(?::text[])',
    incoming: 'target_id = any(?::text[])',
    both: '(source_id = any(?::text[]) or target_id = any(?::text[]))',
  }[direction];
  const frontierParams = direction === 'both' ? [frontier, frontier] : [frontier];
  const typeFilter = types && types.length > 0 ? 'and type = any(?::text[])' : '';
  const typeParams = types && types.length > 0 ? [types] : [];
  return queryWithParameters<Step>(
    em,
    `select id, source_id as "sourceId", target_id as "targetId" from relationships
      where customer_id = ? and ${leavingFrontier} ${typeFilter} limit ?`,
    [customerId, ...frontierParams, ...typeParams, limit],
  );
}

/** The nodes `steps` lead to that the walk has not reached yet, each once. */
function unvisitedEnds(steps: Step[], direction: TraversalDirection, depthByNode: Map<string, number>): string[] {
  const next = new Set<string>();
  for (const node of steps.flatMap(endsAhead[direction])) {
    if (!depthByNode.has(node)) next.add(node);
  }
  return [...next];
}

function nodesByDepth(depthByNode: Map<string, number>): Traversal['nodes'] {
  return [...depthByNode]
    .map(([substrateId, depth]) => ({ substrateId, depth }))
    .sort((a, b) => a.depth - b.depth || a.substrateId.localeCompare(b.substrateId));
}

async function edgesById(em: EntityManager, customerId: string, ids: string[]): Promise<Relationship[]> {
  if (ids.length === 0) return [];
  return queryWithParameters<Relationship>(
    em,
    `select ${columns} from relationships where customer_id = ? and id = any(?::uuid[]) order by created_at, id`,
    [customerId, ids],
  );
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
