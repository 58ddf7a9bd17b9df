/**
 * What a table costs on disk and how autovacuum keeps up with it, for the history bench and the soak: sizes from
 * pg_total_relation_size and friends, row counts and vacuum activity from pg_stat_user_tables. A partitioned
 * table's figures are the sum over its partitions (pg_partition_tree), so the figures hold on either layout.
 */
import type pg from 'pg';

export interface TableStats {
  table: string;
  /** Heap (and TOAST) bytes. */
  heap_mib: number;
  index_mib: number;
  total_mib: number;
  live_rows: number;
  dead_rows: number;
  last_autovacuum: string | null;
  autovacuum_count: number;
  autoanalyze_count: number;
}

/** The tables that grow with traffic: job history, batch items, request logs, webhook deliveries and attempts. */
export const historyTables = ['jobs', 'batch_items', 'request_logs', 'webhook_deliveries', 'webhook_attempts'];

const mib = (bytes: unknown) => Math.round((Number(bytes) / 1048576) * 10) / 10;

export async function tableStats(db: pg.Pool | pg.Client, tables: readonly string[] = historyTables): Promise<TableStats[]> {
  const { rows } = await db.query(
    `select t.name as table,
            sum(pg_total_relation_size(p.relid) - pg_indexes_size(p.relid)) as heap,
            sum(pg_indexes_size(p.relid)) as index,
            sum(pg_total_relation_size(p.relid)) as total,
            sum(s.n_live_tup) as live, sum(s.n_dead_tup) as dead,
            max(s.last_autovacuum) as last_autovacuum,
            sum(s.autovacuum_count) as autovacuum_count, sum(s.autoanalyze_count) as autoanalyze_count
       from unnest($1::text[]) as t(name)
       -- A plain table is its own leaf; a partitioned one's leaves are its partitions.
       join lateral (select c.oid as relid from pg_class c where c.oid = to_regclass(t.name) and c.relkind = 'r'
                     union all
                     select tree.relid from pg_partition_tree(to_regclass(t.name)) tree
                      where tree.isleaf and tree.relid <> to_regclass(t.name)) p on true
       left join pg_stat_user_tables s on s.relid = p.relid
      group by t.name order by array_position($1::text[], t.name::text)`,
    [tables],
  );
  return rows.map((row) => ({
    table: row.table,
    heap_mib: mib(row.heap),
    index_mib: mib(row.index),
    total_mib: mib(row.total),
    live_rows: Number(row.live ?? 0),
    dead_rows: Number(row.dead ?? 0),
    last_autovacuum: row.last_autovacuum ? new Date(row.last_autovacuum).toISOString() : null,
    autovacuum_count: Number(row.autovacuum_count ?? 0),
    autoanalyze_count: Number(row.autoanalyze_count ?? 0),
  }));
}
