import type { EntityManager } from '@mikro-orm/postgresql';
import { inTransaction } from '../transaction.js';

/** A request-log row as the API records it and the ingest endpoint accepts it. */
export interface NewRequestLog {
  timestamp: Date;
  customerId: string;
  serviceType: string;
  method: string;
  statusCode: number;
  bytesOut: number;
}

/**
 * Advisory lock key held while request logs are inserted. Ids come from a sequence, and a sequence alone
 * does not make rows visible in id order: a transaction holding id 100 can commit after one holding 101,
 * and a metering run in between would move its watermark past 100 for ever. Holding this lock from
 * `nextval` to commit makes inserts commit in id order, so a watermark never passes an uncommitted row.
 */
const requestLogInsertLock = 4_120_731_001;

/** Inserts at most this many rows per statement (one JSON parameter each). */
const rowsPerStatement = 5_000;

/**
 * Appends request logs; the only way rows should enter `request_logs` (see the lock above). Runs in its own
 * transaction unless `em` is already in one. Returns the number of rows written.
 */
export async function insertRequestLogs(em: EntityManager, rows: readonly NewRequestLog[]): Promise<number> {
  if (rows.length === 0) return 0;
  await inTransaction(em, async (tx) => {
    await tx.execute('select pg_advisory_xact_lock(?)', [requestLogInsertLock]);
    for (let start = 0; start < rows.length; start += rowsPerStatement) {
      const chunk = rows.slice(start, start + rowsPerStatement).map((row) => ({
        timestamp: row.timestamp.toISOString(),
        customer_id: row.customerId,
        service_type: row.serviceType,
        method: row.method,
        status_code: row.statusCode,
        bytes_out: row.bytesOut,
      }));
      await tx.execute(
        `insert into request_logs (timestamp, customer_id, service_type, method, status_code, bytes_out)
         select r.timestamp, r.customer_id, r.service_type, r.method, r.status_code, r.bytes_out
           from jsonb_to_recordset(?::jsonb) as r(timestamp timestamptz, customer_id uuid, service_type text, method text, status_code smallint, bytes_out bigint)`,
        [JSON.stringify(chunk)],
      );
    }
  });
  return rows.length;
}
