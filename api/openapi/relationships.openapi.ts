import { z } from 'zod';
import { relationshipTypes } from '../../db/entities/relationship.entity.js';
import {
  createRelationshipBody,
  edgeListParams,
  edgeListQuery,
  relationshipParams,
  relationshipStatsQuery,
  traverseBody,
} from '../routes/relationships.routes.js';
import { documentRoute, ex, exampleOf, json, jsonBody, noContent, pageOf, timestamp, type RouteDocs } from './document-route.js';

export const relationshipSchema = z
  .object({
    id: z.uuid(),
    source_id: z.string(),
    target_id: z.string(),
    type: z.enum(relationshipTypes),
    metadata: z.record(z.string(), z.unknown()),
    created_at: timestamp,
  })
  .meta({
    id: 'Relationship',
    example: {
      id: ex.relationshipId,
      source_id: ex.substrateId,
      target_id: ex.substrateId2,
      type: 'DEPENDENCY',
      metadata: { weight: 1 },
      created_at: ex.at,
    },
  });

/** relationships.routes.ts */
export const relationshipsDocs: RouteDocs = (registry) => {
  const tag = 'Relationships';
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/relationships',
    summary: 'Relate two substrates (or get the existing relationship)',
    description:
      "A customer keeps at most its tier's TIER_MAX_RELATIONSHIPS relationships (default starter 50,000, pro 500,000, enterprise " +
      '5,000,000); a new one past it answers 422 naming `body` (with `cap: "relationships"`, `limit`, `count`, `requested`). ' +
      'Re-creating an existing relationship takes no room; deleting one, or a substrate it ends at, makes room.',
    request: {
      body: jsonBody(createRelationshipBody, {
        source_id: ex.substrateId,
        target_id: ex.substrateId2,
        type: 'DEPENDENCY',
        metadata: { weight: 1 },
      }),
    },
    responses: { 201: json(relationshipSchema, 'Created'), 200: json(relationshipSchema, 'It already existed') },
    problems: [404, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/relationships/stats',
    summary: "Counts over the caller's relationships",
    description: 'Read at most once per 10 s per customer by each API process: a relationship made since may not be counted yet.',
    request: { query: relationshipStatsQuery },
    responses: {
      200: json(
        z.object({
          total: z.int(),
          by_type: z.record(z.string(), z.int()),
          substrates_with_relationships: z.int(),
          average_out_degree: z.number(),
        }),
        'The figures',
        undefined,
        { total: 12, by_type: { DEPENDENCY: 9, REFERENCE: 3 }, substrates_with_relationships: 8, average_out_degree: 1.5 },
      ),
    },
  });
  for (const direction of ['outgoing', 'incoming'] as const) {
    documentRoute(registry, {
      tag,
      method: 'get',
      path: `/relationships/${direction}/:substrate_id`,
      summary: `Relationships ${direction === 'outgoing' ? 'from' : 'to'} a substrate`,
      request: { params: edgeListParams, query: edgeListQuery },
      responses: { 200: json(pageOf(relationshipSchema), 'A page of relationships') },
      problems: [404],
    });
  }
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/relationships/traverse',
    summary: 'Walk the graph from a substrate (max_depth ≤ 10)',
    request: {
      body: jsonBody(traverseBody, {
        start_substrate_id: ex.substrateId,
        direction: 'outgoing',
        max_depth: 3,
        relationship_types: ['DEPENDENCY'],
      }),
    },
    responses: {
      200: json(
        z.object({
          start_substrate_id: z.string(),
          nodes: z.array(z.object({ substrate_id: z.string(), depth: z.int().min(0) })),
          edges: z.array(relationshipSchema),
        }),
        'The nodes reached and the edges walked',
        undefined,
        {
          start_substrate_id: ex.substrateId,
          nodes: [
            { substrate_id: ex.substrateId, depth: 0 },
            { substrate_id: ex.substrateId2, depth: 1 },
          ],
          edges: [exampleOf(relationshipSchema)],
        },
      ),
    },
    problems: [404, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/relationships/:id',
    summary: 'Get a relationship',
    request: { params: relationshipParams },
    responses: { 200: json(relationshipSchema, 'The relationship') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'delete',
    path: '/relationships/:id',
    summary: 'Delete a relationship',
    request: { params: relationshipParams },
    responses: { 204: noContent },
    problems: [404],
  });
};
