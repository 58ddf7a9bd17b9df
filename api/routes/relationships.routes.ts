import { Router } from 'express';
import { uuidv7 } from '../../lib/uuid.js';
import { z } from 'zod';
import { relationshipTypes, type Relationship } from '../../db/entities/relationship.entity.js';
import {
  createRelationship,
  deleteRelationship,
  findRelationship,
  listEdges,
  maxTraversalEdges,
  relationshipStats,
  traverse,
} from '../../db/repositories/relationships.js';
import { existingSubstrateIds } from '../../db/repositories/substrates.js';
import { atMost, atMostItems, atMostJson } from '../../jobs/input-limits.js';
import { substrateIdSchema } from '../../jobs/invoke/invoke.job.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { capProblem, notFound, ProblemError } from '../problems.js';
import { parseInput, refuseBodyFields, refuseQueryFields } from '../validate.js';
import { storableTime } from '../storable-time.js';
import { sharedReadings } from '../shared-readings.js';

const metadataSchema = atMostJson(z.record(z.string().min(1).max(128), z.unknown()), 8192, 'metadata');

export const createRelationshipBody = z.strictObject({
  source_id: substrateIdSchema,
  target_id: substrateIdSchema,
  type: z.enum(relationshipTypes),
  metadata: metadataSchema.optional(),
});
export const traverseBody = z.strictObject({
  start_substrate_id: substrateIdSchema,
  direction: z.enum(['outgoing', 'incoming', 'both']).default('outgoing'),
  max_depth: atMost(z.number().int().min(1), 10).default(3),
  relationship_types: atMostItems(z.array(z.enum(relationshipTypes)), relationshipTypes.length, 'relationship types').optional(),
});
export const relationshipParams = z.object({ id: z.string().uuid('a relationship id is a UUID') });
export const edgeListParams = z.object({ substrate_id: substrateIdSchema });
export const edgeListQuery = z.strictObject(paginationQuery);
/** How long one reading of a customer's relationship figures serves its `GET /relationships/stats` calls, in ms. */
export const relationshipStatsReuseMs = 10_000;

/** GET /relationships/stats takes no query: an unknown field is a 400, as on every route. */
export const relationshipStatsQuery = z.strictObject({});

function tooManyEdgesProblem(): ProblemError {
  const message = `the traversal reaches more than ${maxTraversalEdges.toLocaleString('en-US')} edges; use a smaller max_depth or relationship_types`;
  return new ProblemError('unprocessable', message, { errors: [{ field: 'body.max_depth', message }] });
}

export function relationshipView(edge: Relationship) {
  return {
    id: edge.id,
    source_id: edge.sourceId,
    target_id: edge.targetId,
    type: edge.type,
    metadata: edge.metadata,
    created_at: new Date(edge.createdAt).toISOString(),
  };
}

export function relationshipsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const em = () => deps.orm.em.fork();
  // A customer's figures, read at most once per 10 s by this process: over 200,000 relationships (two days of a
  // starter's writes) their two queries took ~610 ms of PostgreSQL a call, and a starter may read 1,000 times a minute.
  const sharedRelationshipStats = sharedReadings((customerId) => relationshipStats(em(), customerId), relationshipStatsReuseMs);

  async function requireSubstrates(customerId: string, ids: Array<[string, string]>): Promise<void> {
    const found = await existingSubstrateIds(
      em(),
      customerId,
      ids.map(([, id]) => id),
    );
    const missing = ids.filter(([, id]) => !found.has(id));
    if (missing.length > 0) {
      throw new ProblemError('not-found', `substrate ${missing.map(([, id]) => id).join(', ')} not found`, {
        errors: missing.map(([field, id]) => ({ field, message: `substrate ${id} not found` })),
      });
    }
  }

  router.post('/relationships', async (req, res) => {
    const { customerId } = principalOf(req);
    const body = parseInput(createRelationshipBody, req.body, 'body');
    // The insert itself requires both substrates to be the caller's: a check before it could pass and the
    // substrate be deleted before the insert (its foreign key then failed, a 500).
    const outcome = await createRelationship(
      em(),
      {
        id: uuidv7(),
        customerId,
        sourceId: body.source_id,
        targetId: body.target_id,
        type: body.type,
        metadata: body.metadata ?? {},
      },
      deps.config.tierMaxRelationships[principalOf(req).tier],
    );
    if (outcome.kind === 'cap-reached') throw capProblem('relationships', 'relationships', outcome.capReached, 'body', 'delete some first');
    if (outcome.kind === 'substrate-missing') {
      // Which end is missing, named as a field (404). Both there again (a deleted substrate created anew, or an
      // identical edge deleted each time it was found): 404 all the same, and the client may send it again.
      await requireSubstrates(customerId, [
        ['body.source_id', body.source_id],
        ['body.target_id', body.target_id],
      ]);
      throw new ProblemError(
        'not-found',
        `the ${body.type} relationship ${body.source_id} → ${body.target_id} was deleted while it was being created; send the request again`,
      );
    }
    const { relationship, created } = outcome;
    res
      .status(created ? 201 : 200)
      .location(`/api/v1/relationships/${relationship.id}`)
      .json(relationshipView(relationship));
  });

  router.get('/relationships/stats', async (req, res) => {
    parseInput(relationshipStatsQuery, req.query, 'query');
    const stats = await sharedRelationshipStats(principalOf(req).customerId);
    res.json({
      total: stats.total,
      by_type: stats.byType,
      substrates_with_relationships: stats.substratesWithRelationships,
      average_out_degree: stats.averageOutDegree,
    });
  });

  for (const direction of ['outgoing', 'incoming'] as const) {
    router.get(`/relationships/${direction}/:substrate_id`, async (req, res) => {
      const { customerId } = principalOf(req);
      const { substrate_id } = parseInput(edgeListParams, req.params, 'params');
      const query = parseInput(edgeListQuery, req.query, 'query');
      await requireSubstrates(customerId, [['params.substrate_id', substrate_id]]);
      const after = decodeCursor(query.cursor, z.object({ createdAt: storableTime(), id: z.string().uuid() }));
      const rows = await listEdges(em(), customerId, substrate_id, direction, after, query.limit + 1);
      res.json(page(rows, query.limit, relationshipView, (row) => ({ createdAt: row.cursorAt, id: row.id })));
    });
  }

  router.post('/relationships/traverse', async (req, res) => {
    const { customerId } = principalOf(req);
    const body = parseInput(traverseBody, req.body, 'body');
    await requireSubstrates(customerId, [['body.start_substrate_id', body.start_substrate_id]]);
    const result = await traverse(em(), customerId, body.start_substrate_id, body.direction, body.max_depth, body.relationship_types);
    if (result === 'too-many-edges') throw tooManyEdgesProblem();
    res.json({
      start_substrate_id: body.start_substrate_id,
      nodes: result.nodes.map((node) => ({ substrate_id: node.substrateId, depth: node.depth })),
      edges: result.edges.map(relationshipView),
    });
  });

  router.get('/relationships/:id', async (req, res) => {
    refuseQueryFields(req.query);
    const { customerId } = principalOf(req);
    const { id } = parseInput(relationshipParams, req.params, 'params');
    const edge = await findRelationship(em(), customerId, id);
    if (!edge) throw notFound(`relationship ${id}`);
    res.json(relationshipView(edge));
  });

  router.delete('/relationships/:id', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(relationshipParams, req.params, 'params');
    refuseBodyFields(req.body);
    if (!(await deleteRelationship(em(), customerId, id))) throw notFound(`relationship ${id}`);
    res.status(204).end();
  });

  return router;
}
