import type { EntityManager } from '@mikro-orm/postgresql';

/** A statement runner bound to `tx`'s transaction: a cursor lives only in the transaction that declared it. */
export type TransactionStatements = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

export function transactionStatements(tx: EntityManager): TransactionStatements {
  const connection = tx.getConnection();
  const ctx = tx.getTransactionContext();
  return <T>(sql: string, params: unknown[] = []) => connection.execute<T[]>(sql, params, 'all', ctx);
}

/**
 * Reads `query`'s rows through a server-side cursor, `batchRows` at a time, and hands each batch to `onBatch`
 * before the next is fetched (await it for backpressure): memory holds one batch whatever the row count, and
 * the event loop is free between batches. The cursor reads one snapshot, taken when it is declared. Must run
 * inside a transaction (`inTransaction`); stops between fetches once `signal` aborts. Returns the rows read.
 */
export async function readInBatches<Row>(
  run: TransactionStatements,
  query: string,
  params: unknown[],
  batchRows: number,
  onBatch: (rows: Row[]) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  await run(`declare batch_rows no scroll cursor for ${query}`, params);
  let rows = 0;
  for (;;) {
    signal?.throwIfAborted();
    const batch = await run<Row>(`fetch ${batchRows} from batch_rows`);
    if (batch.length === 0) break;
    rows += batch.length;
    await onBatch(batch);
  }
  await run('close batch_rows');
  return rows;
}
