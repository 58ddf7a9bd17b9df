import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Reads `query`'s rows through a server-side cursor, `batchRows` at a time, and hands each batch to `onBatch`
 * before the next is fetched (await it for backpressure): memory holds one batch whatever the row count, and
 * the event loop is free between batches. The cursor reads one snapshot, taken when it is declared. `tx` must be
 * in a transaction (`inTransaction`: a cursor lives only in the transaction that declared it); stops between
 * fetches once `signal` aborts. Returns the rows read.
 */
export async function readInBatches<Row extends object>(
  tx: EntityManager,
  query: string,
  params: unknown[],
  batchRows: number,
  onBatch: (rows: Row[]) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  await tx.execute(`declare batch_rows no scroll cursor for ${query}`, params);
  let rows = 0;
  for (;;) {
    signal?.throwIfAborted();
    const batch = await tx.execute<Row[]>(`fetch ${batchRows} from batch_rows`);
    if (batch.length === 0) break;
    rows += batch.length;
    await onBatch(batch);
  }
  await tx.execute('close batch_rows');
  return rows;
}

/**
 * SQL for a `timestamptz` column as ISO 8601 UTC text to the microsecond, for a keyset cursor: a JavaScript Date
 * keeps milliseconds only, and a cursor cut to them skips (newest first) or repeats (oldest first) the rows
 * written in the same millisecond as the page's last one, such as a batch of substrates sharing one `now()`.
 */
export const microsecondTime = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
