import type { EntityManager } from '@mikro-orm/postgresql';
import type { BatchItem } from '../entities/batch-item.entity.js';
import { resultsAsJsonText } from '../../lib/json-text.js';
import { readPage, resultAndErrorBytes, type PageBound, type PageRows } from '../page-budget.js';
import { queryWithParameters } from '../query-with-parameters.js';
import type { SubstrateDefinition } from './substrates.js';

/** Indexes already stored for a batch, so a retried batch job resumes instead of starting over. */
export async function storedItemIndexes(em: EntityManager, batchId: string): Promise<Set<number>> {
  const rows = await em.getConnection().execute<Array<{ index: number }>>(`select index from batch_items where batch_id = ?`, [batchId]);
  return new Set(rows.map((row) => row.index));
}

/** Bytes of JSON of the results a batch has stored (what a retried batch has spent of BATCH_RESULTS_MAX_BYTES). */
export async function storedResultBytes(em: EntityManager, batchId: string): Promise<number> {
  const [row] = await em
    .getConnection()
    .execute<Array<{ bytes: string | null }>>(`select sum(octet_length(result::text)) as bytes from batch_items where batch_id = ?`, [
      batchId,
    ]);
  return Number(row?.bytes ?? 0);
}

/** One multi-row INSERT for a whole chunk; a row already stored (a retry) is left as it was. */
export async function insertBatchItems(em: EntityManager, batchId: string, items: Array<Omit<BatchItem, 'batchId'>>): Promise<void> {
  if (items.length === 0) return;
  await queryWithParameters(
    em,
    `insert into batch_items (batch_id, index, substrate_id, state, result, error)
     values ${items.map(() => '(?, ?, ?, ?, ?::jsonb, ?)').join(', ')}
     on conflict (batch_id, index) do nothing`,
    items.flatMap((item) => [
      batchId,
      item.index,
      item.substrateId,
      item.state,
      item.result === undefined ? null : JSON.stringify(item.result),
      item.error,
    ]),
  );
}

export async function batchItemCounts(em: EntityManager, batchId: string): Promise<{ completed: number; failed: number }> {
  const [row] = await em
    .getConnection()
    .execute<Array<{ completed: string; failed: string }>>(
      `select count(*) filter (where state = 'completed') as completed, count(*) filter (where state = 'failed') as failed from batch_items where batch_id = ?`,
      [batchId],
    );
  return { completed: Number(row?.completed ?? 0), failed: Number(row?.failed ?? 0) };
}

/**
 * A page of items after `afterIndex` in submission order, only those in `state` when given: at most `bound.limit`,
 * fewer when their results and errors add up over `bound.maxBytes` (always at least one).
 */
export async function listBatchItems(
  em: EntityManager,
  batchId: string,
  afterIndex: number,
  bound: PageBound,
  state?: BatchItem['state'],
): Promise<PageRows<BatchItem>> {
  // The primary key (batch_id, index) walks the batch in order; a state filter skips rows on the way (a batch holds at most 10,000).
  const candidates = {
    text: `select batch_id as "batchId", index, substrate_id as "substrateId", state, result::text as result, error
             from batch_items where batch_id = ? and index > ?${state ? ' and state = ?' : ''} order by index limit ?`,
    params: state ? [batchId, afterIndex, state, bound.limit + 1] : [batchId, afterIndex, bound.limit + 1],
  };
  // Results read as text and written into the answer unparsed (JsonText).
  const found = await readPage<BatchItem>(em, candidates, { orderBy: 'index', bytes: resultAndErrorBytes }, bound);
  resultsAsJsonText(found.rows);
  return found;
}

/** The definitions of every substrate a batch names that the customer owns, in one query. */
export async function substrateDefinitions(
  em: EntityManager,
  customerId: string,
  ids: string[],
): Promise<Map<string, SubstrateDefinition>> {
  if (ids.length === 0) return new Map();
  const rows = await em
    .getConnection()
    .execute<SubstrateDefinition[]>(
      `select id, customer_id as "customerId", expression_type as "expressionType", expression, value from substrates where customer_id = ? and id in (?)`,
      [customerId, ids],
    );
  return new Map(rows.map((row) => [row.id, row]));
}
