import { EntitySchema } from '@mikro-orm/core';

export const relationshipTypes = ['DEPENDENCY', 'COMPOSITION', 'INHERITANCE', 'REFERENCE', 'CUSTOM'] as const;
export type RelationshipType = (typeof relationshipTypes)[number];

/** A typed, directed edge between two substrates of one customer. Deleting either substrate deletes it (FK cascade). */
export interface Relationship {
  id: string;
  customerId: string;
  sourceId: string;
  targetId: string;
  type: RelationshipType;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

export const RelationshipSchema = new EntitySchema<Relationship>({
  name: 'Relationship',
  tableName: 'relationships',
  uniques: [{ name: 'relationships_edge_unique', properties: ['customerId', 'sourceId', 'targetId', 'type'] }],
  indexes: [
    { name: 'relationships_source_index', properties: ['sourceId', 'type'] },
    { name: 'relationships_target_index', properties: ['targetId', 'type'] },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    sourceId: { kind: 'm:1', entity: 'Substrate', fieldName: 'source_id', mapToPk: true, deleteRule: 'cascade', updateRule: 'cascade' },
    targetId: { kind: 'm:1', entity: 'Substrate', fieldName: 'target_id', mapToPk: true, deleteRule: 'cascade', updateRule: 'cascade' },
    type: { type: 'text' },
    metadata: { type: 'json', default: '{}' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
