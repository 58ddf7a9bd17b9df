import type { EntityManager } from '@mikro-orm/postgresql';
import type { ExpressionType, Substrate } from '../entities/substrate.entity.js';
import { microsecondTime } from '../cursor.js';
import { queryWithParameters } from '../query-with-parameters.js';

export type NewSubstrate = Omit<Substrate, 'createdAt' | 'updatedAt'>;

export type SubstrateRow = Omit<Substrate, 'expression'>;

const columns = `id, customer_id as "customerId", identity, expression_type as "expressionType", value, metadata,
  created_at as "createdAt", updated_at as "updatedAt"`;

const columnsWithMetadataText = columns.replace('metadata,', 'metadata::text as "metadataText",');

/** The row type of the substrates `jsonb_to_recordset` below. */
const newSubstrateRecordset =
  'id text, "customerId" uuid, identity text, "expressionType" text, expression text, value float8, metadata jsonb';

/** A create that would take the customer past its cap of substrates: it keeps `had`, and `adding` of the request are new. */
export interface SubstrateCapReached {
  capReached: { cap: number; had: number; adding: number };
}

/**
 * Inserts the substrates that do not exist yet, unless the new ones would take the customer past `cap` substrates (then
 * none: all or nothing); returns every requested row and which ones are new. The rows go as one JSON parameter
 * (`jsonb_to_recordset`), so neither the SQL text nor its parameter list grows with them.
 */
export async function upsertSubstrates(
  em: EntityManager,
  substrates: NewSubstrate[],
  cap: number,
): Promise<Array<SubstrateRow & { created: boolean }> | SubstrateCapReached> {
  const customerId = substrates[0]?.customerId;
  if (customerId === undefined) return [];
  const inserted = await insertNewSubstrates(em, customerId, JSON.stringify(substrates), cap);
  if (!(inserted instanceof Set)) return inserted;
  const existing = await queryWithParameters<SubstrateRow>(
    em,
    `select ${columns} from substrates where customer_id = ? and id = any(?::text[])`,
    [customerId, substrates.map((s) => s.id)],
  );
  const byId = new Map(existing.map((row) => [row.id, row]));
  return substrates.flatMap((s) => {
    const row = byId.get(s.id);
    return row ? [{ ...row, created: inserted.has(s.id) }] : [];
  });
}

/**
 * Inserts the rows of `rowsJson` (a JSON array of NewSubstrate of `customerId`) that do not exist yet, and adds them to
 * the customer's count, in one statement; answers the ids it inserted. The count's row is read `for update`: a
 * concurrent create of the same customer waits for this one's commit and then sees its count, so two cannot both
 * pass the cap (a customer's very first creates have no row to lock yet: two at once may pass it by one batch).
 * A row taken meanwhile by a concurrent create counts as new here (the snapshot predates it) but is not inserted
 * (`on conflict`), so the check can only be stricter than the count.
 */
async function insertNewSubstrates(
  em: EntityManager,
  customerId: string,
  rowsJson: string,
  cap: number,
): Promise<Set<string> | SubstrateCapReached> {
  const [outcome] = await queryWithParameters<{ fits: boolean; had: number; adding: number; inserted: string[] }>(
    em,
    `with v as (select * from jsonb_to_recordset(?::jsonb) as v(${newSubstrateRecordset})),
     counted as (select substrates from customer_substrate_counts where customer_id = ? for update),
     fresh as (select v.* from v where not exists (select 1 from substrates s where s.id = v.id)),
     room as (select coalesce((select substrates from counted), 0) as had, (select count(*)::int from fresh) as adding),
     inserted as (
       insert into substrates (id, customer_id, identity, expression_type, expression, value, metadata)
       select f.id, f."customerId", f.identity, f."expressionType", f.expression, f.value, f.metadata
         from fresh f where (select had + adding <= ? from room)
       on conflict (id) do nothing
       returning id),
     counting as (
       insert into customer_substrate_counts (customer_id, substrates)
       select ?, count(*) from inserted having count(*) > 0
       on conflict (customer_id) do update set substrates = customer_substrate_counts.substrates + excluded.substrates)
     select had + adding <= ? as fits, had, adding, array(select id from inserted) as inserted from room`,
    [rowsJson, customerId, cap, customerId, cap],
  );
  if (!outcome) throw new Error('substrate insert returned nothing');
  if (!outcome.fits) return { capReached: { cap, had: outcome.had, adding: outcome.adding } };
  return new Set(outcome.inserted);
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
  cap: number,
): Promise<SubstrateRowWithMetadataText[] | SubstrateCapReached> {
  if (ids.length === 0) return [];
  const inserted = await insertNewSubstrates(em, customerId, rowsJson, cap);
  if (!(inserted instanceof Set)) return inserted;
  const existing = await queryWithParameters<Omit<SubstrateRowWithMetadataText, 'created'>>(
    em,
    `select ${columnsWithMetadataText} from substrates where customer_id = ? and id = any(?::text[])`,
    [customerId, ids],
  );
  const byId = new Map(existing.map((row) => [row.id, row]));
  return ids.flatMap((id) => {
    const row = byId.get(id);
    return row ? [{ ...row, created: inserted.has(id) }] : [];
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
  // The customer's count goes down in the same statement.
  const rows = await em.getConnection().execute<Array<{ id: string }>>(
    `with gone as (delete from substrates where id = ? and customer_id = ? returning id),
     counting as (update customer_substrate_counts set substrates = greatest(substrates - (select count(*) from gone), 0)
                   where customer_id = ? and exists (select 1 from gone))
     select id from gone`,
    [id, customerId, customerId],
  );
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
export async function searchSubstrates(em: EntityManager, filter: SubstrateFilter): Promise<Array<SubstrateRow & { cursorAt: string }>> {
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
  return em.getConnection().execute<Array<SubstrateRow & { cursorAt: string }>>(
    `select ${columns}, ${microsecondTime('created_at')} as "cursorAt" from substrates where ${where.join(' and ')}
        order by created_at desc, id desc limit ?`,
    params,
  );
}
