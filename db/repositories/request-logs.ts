import type { EntityManager } from '@mikro-orm/postgresql';
import { queryWithParameters } from '../query-with-parameters.js';
import { inTransaction } from '../transaction.js';
import { billableStatus } from './metering.js';

/** A request-log row as the API records it and the ingest endpoint accepts it. */
export interface NewRequestLog {
  timestamp: Date;
  customerId: string;
  serviceType: string;
  method: string;
  statusCode: number;
  bytesOut: number;
  /** How many identical rows this one stands for (default 1): each job of a bulk submit is one request (SPEC §9). */
  copies?: number;
}

/** The rows a request log entry stands for. */
export const copiesOf = (row: NewRequestLog): number => row.copies ?? 1;

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
        copies: copiesOf(row),
      }));
      await queryWithParameters(
        tx,
        `insert into request_logs (timestamp, customer_id, service_type, method, status_code, bytes_out)
         select r.timestamp, r.customer_id, r.service_type, r.method, r.status_code, r.bytes_out
           from jsonb_to_recordset(?::jsonb) as r(timestamp timestamptz, customer_id uuid, service_type text, method text, status_code smallint, bytes_out bigint, copies int)
          cross join lateral generate_series(1, r.copies)`,
        [JSON.stringify(chunk)],
      );
    }
  });
  return rows.reduce((sum, row) => sum + copiesOf(row), 0);
}

export interface ExpireRequestLogsStep {
  /** The last id read: the next step reads past it. */
  lastId: string | null;
  deleted: number;
  /** Nothing past `lastId` can have expired yet: the step read nothing, or only rows received since the cutoff (rows are received in id order). */
  done: boolean;
}

/**
 * One retention step over request logs (SPEC §9): reads the next `stepRows` rows after `afterId` up to the
 * metering watermark `meteredUpTo` (a row past it is not metered yet), and deletes those older than `days`
 * (by their timestamp, and received that long ago too) that no unbilled usage record can still need: rows
 * metering does not count (402, 429, 5xx), and counted rows whose (customer, service type, hour) has no
 * record without `charged_usd_cents`. A window with an open, claimed or rejected record keeps its rows
 * until billing prices it. Usage records themselves, charges and the ledger are never touched.
 */
export async function expireRequestLogsStep(
  em: EntityManager,
  options: { afterId: string | null; meteredUpTo: string; days: number; stepRows: number; daySeconds?: number },
): Promise<ExpireRequestLogsStep> {
  const [row] = await em.getConnection().execute<Array<{ last_id: string | null; deleted: number; newer: boolean | null }>>(
    `with scanned as (
       select id, timestamp, customer_id, service_type, status_code, received_at from request_logs
        where id > ?::bigint and id <= ?::bigint order by id limit ?),
     cutoff as (select now() - ?::int * (?::int * interval '1 second') as at),
     gone as (
       delete from request_logs where id in (
         select r.id from scanned r, cutoff
          where r.timestamp < cutoff.at and r.received_at < cutoff.at
            and (not (${billableStatus.replaceAll('status_code', 'r.status_code')})
                 or not exists (select 1 from usage_records u
                                 where u.customer_id = r.customer_id and u.service_type = r.service_type
                                   and u.window_start = date_trunc('hour', r.timestamp, 'UTC') and u.charged_usd_cents is null)))
       returning 1)
     select (select max(id)::text from scanned) as last_id, (select count(*)::int from gone) as deleted,
            (select bool_and(received_at >= cutoff.at) from scanned, cutoff) as newer`,
    [options.afterId ?? '0', options.meteredUpTo, options.stepRows, options.days, options.daySeconds ?? 86_400],
  );
  const lastId = row?.last_id ?? null;
  return { lastId, deleted: row?.deleted ?? 0, done: lastId === null || row?.newer === true };
}
