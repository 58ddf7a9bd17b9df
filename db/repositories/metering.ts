import type { EntityManager } from '@mikro-orm/postgresql';
import { inTransaction } from '../transaction.js';

/** The one watermark row: request logs up to `last_id` are counted. */
const watermarkName = 'request_logs';

/**
 * Which request logs are billable: refusals for payment (402) or rate (429) and the platform's own failures
 * (5xx) are recorded but not counted. Everything else an authenticated caller got, including 4xx, is usage.
 */
export const billableStatus = 'status_code < 500 and status_code not in (402, 429)';

export interface MeteredBatch {
  /** Watermark before and after the batch (request log ids). */
  fromId: string;
  toId: string;
  /** Request logs the batch covered (billable or not). */
  rows: number;
  /** Usage records created or added to. */
  records: number;
}

export interface MeterBatchOptions {
  /** Request logs per batch (per transaction). */
  batchSize: number;
  /** Runs inside the transaction just before it commits; throwing rolls the whole batch back (fault injection in tests). */
  beforeCommit?: (batch: MeteredBatch) => void | Promise<void>;
}

/**
 * Where a window's byte count stops: PostgreSQL's largest bigint. The ingest takes up to 2^53 − 1 bytes a row,
 * and 1,025 such rows in one customer's hour summed past it: the batch failed on every run, the watermark
 * stayed, and no customer was metered again. A window that full is priced at the cap instead.
 */
const maxBigint = '9223372036854775807';

/**
 * Counts the next batch of request logs past the watermark, in one transaction:
 *
 * 1. lock the watermark row — a concurrent run waits here, then reads the watermark this one moved;
 * 2. take up to `batchSize` log ids past it (inserts commit in id order, see `insertRequestLogs`, so no
 *    smaller id can still appear later);
 * 3. add them per customer, service type and UTC hour into the open usage record of that window — an
 *    upsert on the partial unique index of open records, so a record claimed or charged by billing is never
 *    touched and late rows open a new record for the same window;
 * 4. move the watermark to the batch's last id.
 *
 * A crash anywhere before commit rolls back both the counts and the watermark; after commit both are
 * durable. Either way each row is counted exactly once. Returns null when nothing is past the watermark.
 */
export async function meterNextBatch(em: EntityManager, options: MeterBatchOptions): Promise<MeteredBatch | null> {
  return inTransaction(em, async (tx) => {
    await tx.execute(`insert into metering_watermarks (name, last_id) values (?, 0) on conflict (name) do nothing`, [watermarkName]);
    const [mark] = await tx.execute<Array<{ last_id: string }>>(`select last_id::text from metering_watermarks where name = ? for update`, [
      watermarkName,
    ]);
    const fromId = mark!.last_id;
    const [range] = await tx.execute<Array<{ to_id: string | null; rows: number }>>(
      `select max(id)::text as to_id, count(*)::int as rows from (select id from request_logs where id > ?::bigint order by id limit ?) batch`,
      [fromId, options.batchSize],
    );
    if (!range?.to_id) return null;
    const toId = range.to_id;
    const records = await tx.execute<Array<{ id: string }>>(
      `insert into usage_records (customer_id, service_type, window_start, window_end, request_count, bytes_transferred)
       select customer_id, service_type, date_trunc('hour', timestamp, 'UTC'), date_trunc('hour', timestamp, 'UTC') + interval '1 hour', count(*),
              least(coalesce(sum(bytes_out), 0), ${maxBigint})
         from request_logs
        where id > ?::bigint and id <= ?::bigint and ${billableStatus}
        group by customer_id, service_type, date_trunc('hour', timestamp, 'UTC')
       on conflict (customer_id, service_type, window_start) where charge_id is null and charged_usd_cents is null
       do update set request_count = usage_records.request_count + excluded.request_count,
                     bytes_transferred = least(usage_records.bytes_transferred::numeric + excluded.bytes_transferred, ${maxBigint}),
                     updated_at = now()
       returning id::text`,
      [fromId, toId],
    );
    await tx.execute(`update metering_watermarks set last_id = ?::bigint, updated_at = now() where name = ?`, [toId, watermarkName]);
    const batch = { fromId, toId, rows: range.rows, records: records.length };
    await options.beforeCommit?.(batch);
    return batch;
  });
}

/** The current watermark (0 before the first run). */
export async function meteringWatermark(em: EntityManager): Promise<string> {
  const [row] = await em.execute<Array<{ last_id: string }>>(`select last_id::text from metering_watermarks where name = ?`, [
    watermarkName,
  ]);
  return row?.last_id ?? '0';
}
