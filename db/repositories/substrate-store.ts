import type { EntityManager } from '@mikro-orm/postgresql';
import type { ExpressionType, Substrate } from '../entities/substrate.entity.js';
import { queryWithParameters } from '../query-with-parameters.js';

export interface NewSubstrate {
  id: string;
  customerId: string;
  identity: string;
  expressionType: ExpressionType;
  expression: string | null;
  value: number | null;
  metadata: Record<string, unknown>;
}

export type SubstrateRow = Omit<Substrate, 'expression'>;

const columns = `id, customer_id as "customerId", identity, expression_type as "expressionType", value, metadata,
  created_at as "createdAt", updated_at as "updatedAt"`;

const columnsWithMetadataText = columns.replace('metadata,', 'metadata::text as "metadataText",');

/** The row type of the substrates `jsonb_to_recordset` below. */
const newSubstrateRecordset =
  'id text, "customerId" uuid, identity text, "expressionType" text, expression text, value float8, metadata jsonb';

/**
 * Inserts the substrates that do not exist yet; returns every requested row and which ones are new. The rows go
 * as one JSON parameter (`jsonb_to_recordset`), so neither the SQL text nor its parameter list grows with them.
 */
export async function upsertSubstrates(em: EntityManager, substrates: NewSubstrate[]): Promise<Array<SubstrateRow & { created: boolean }>> {
  if (substrates.length === 0) return [];
  const created = await insertNewSubstrates(em, JSON.stringify(substrates));
  const customerId = substrates[0]?.customerId;
  const existing = await queryWithParameters<SubstrateRow>(
    em,
    `select ${columns} from substrates where customer_id = ? and id = any(?::text[])`,
    [customerId, substrates.map((s) => s.id)],
  );
  const byId = new Map(existing.map((row) => [row.id, row]));
  return substrates.flatMap((s) => {
    const row = byId.get(s.id);
    return row ? [{ ...row, created: created.has(s.id) }] : [];
  });
}

/** Inserts the rows of `rowsJson` (a JSON array of NewSubstrate) that do not exist yet; answers the ids it inserted. */
async function insertNewSubstrates(em: EntityManager, rowsJson: string): Promise<Set<string>> {
  const inserted = await queryWithParameters<{ id: string }>(
    em,
    `insert into substrates (id, customer_id, identity, expression_type, expression, value, metadata)
     select v.id, v."customerId", v.identity, v."expressionType", v.expression, v.value, v.metadata
       from jsonb_to_recordset(?::jsonb) as v(${newSubstrateRecordset})
     on conflict (id) do nothing
     returning id`,
    [rowsJson],
  );
  return new Set(inserted.map((row) => row.id));
}

/** A substrate row whose metadata is left as PostgreSQL's JSON text (for an answer that only repeats it). */
export type SubstrateRowWithMetadataText = Omit<SubstrateRow, 'metadata'> & { metadataText: string; created: boolean };

/**
 * `upsertSubstrates` for rows already serialised (`rowsJson`, a JSON array of NewSubstrate of `customerId`,
 * whose ids are `ids`), answering the metadata as JSON text: a 10 MB batch is then neither serialised nor
 * parsed on the caller's thread.
 */
export async function upsertSerialisedSubstrates(
  em: EntityManager,
  customerId: string,
  rowsJson: string,
  ids: string[],
): Promise<SubstrateRowWithMetadataText[]> {
  if (ids.length === 0) return [];
  const created = await insertNewSubstrates(em, rowsJson);
  const existing = await queryWithParameters<Omit<SubstrateRowWithMetadataText, 'created'>>(
    em,
    `select ${columnsWithMetadataText} from substrates where customer_id = ? and id = any(?::text[])`,
    [customerId, ids],
  );
  const byId = new Map(existing.map((row) => [row.id, row]));
  return ids.flatMap((id) => {
    const row = byId.get(id);
    return row ? [{ ...row, created: created.has(id) }] : [];
  });
}

export async function findSubstrateRow(em: EntityManager, customerId: string, id: string): Promise<SubstrateRow | null> {
  const rows = await em
    .getConnection()
    .execute<SubstrateRow[]>(`select ${columns} from substrates where id = ? and customer_id = ?`, [id, customerId]);
  return rows[0] ?? null;
}

export async function replaceSubstrateMetadata(
  em: EntityManager,
  customerId: string,
  id: string,
  metadata: Record<string, unknown>,
): Promise<SubstrateRow | null> {
  const rows = await em
    .getConnection()
    .execute<SubstrateRow[]>(
      `update substrates set metadata = ?::jsonb, updated_at = now() where id = ? and customer_id = ? returning ${columns}`,
      [JSON.stringify(metadata), id, customerId],
    );
  return rows[0] ?? null;
}

/** Deletes the substrate (and, when relationships exist, its relationships). Returns whether it existed. */
export async function deleteSubstrate(em: EntityManager, customerId: string, id: string): Promise<boolean> {
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`delete from substrates where id = ? and customer_id = ? returning id`, [id, customerId]);
  return rows.length > 0;
}

export interface SubstrateFilter {
  customerId: string;
  name?: string;
  expressionType?: ExpressionType;
  metadata: Record<string, string>;
  createdAfter?: Date;
  after?: { createdAt: string; id: string };
  limit: number;
}

/** Newest first, keyset-paginated on (created_at, id). Metadata values compare as text, so `metadata.n=5` matches 5 and "5". */
export async function searchSubstrates(em: EntityManager, filter: SubstrateFilter): Promise<SubstrateRow[]> {
  const where = ['customer_id = ?'];
  const params: unknown[] = [filter.customerId];
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause);
    params.push(...values);
  };
  if (filter.name !== undefined) add(`metadata ->> 'name' = ?`, filter.name);
  if (filter.expressionType) add('expression_type = ?', filter.expressionType);
  for (const [key, value] of Object.entries(filter.metadata)) add(`metadata ->> ? = ?`, key, value);
  if (filter.createdAfter) add('created_at > ?', filter.createdAfter);
  if (filter.after) add('(created_at, id) < (?::timestamptz, ?)', filter.after.createdAt, filter.after.id);
  params.push(filter.limit);
  return em
    .getConnection()
    .execute<SubstrateRow[]>(
      `select ${columns} from substrates where ${where.join(' and ')} order by created_at desc, id desc limit ?`,
      params,
    );
}
