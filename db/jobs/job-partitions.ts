import type { EntityManager } from '@mikro-orm/postgresql';
import { finalStates } from '../entities/job-record.entity.js';
import { queryWithParameters } from '../query-with-parameters.js';
import { inTransaction } from '../transaction.js';
import { uuidv7Floor } from './expire-jobs.js';

/**
 * `jobs` and `batch_items` are range-partitioned by job id (batch items by `batch_id`, their job's id) with
 * the same bounds, plus a DEFAULT partition each; each `batch_items` partition has a foreign key to its `jobs`
 * twin (ON DELETE CASCADE), so a twin pair is dropped together without checking any other partition. Ids are UUIDv7, whose first 48 bits are the creation time in
 * ms, so a range of ids is a range of time: a lookup by id prunes to one partition, and retention drops a whole
 * partition once everything in it has expired. The migration that partitioned the tables created weekly
 * partitions; `ensureJobPartitions` keeps the current one and the next ones in place (worker start and every
 * retention run), and `dropExpiredJobPartitions` removes the old ones.
 */

export interface JobPartition {
  /** The `jobs` partition's name; its `batch_items` twin is `batchItemsPartitionOf(name)`. */
  name: string;
  /** First id in range (inclusive), as the ms of its UUIDv7 time. */
  fromMs: number;
  /** First id past the range, as ms. */
  toMs: number;
}

/** The smallest UUIDv7 minted at `ms`. */
const uuidv7AtMs = (ms: number): string => uuidv7Floor(new Date(ms));

const msOfUuid = (uuid: string): number => parseInt(uuid.replace(/-/g, '').slice(0, 12), 16);

/** `jobs_p20261130000000`: the partition of ids from that UTC time. The migration names them the same way. */
export const jobPartitionName = (fromMs: number): string => `jobs_p${new Date(fromMs).toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
const batchItemsPartitionOf = (jobsPartition: string): string => jobsPartition.replace(/^jobs_/, 'batch_items_');

/** Serialises partition upkeep and drops between processes (workers start together; retention runs on one). */
const partitionLock = 7_231_995;
/** How long a partition DDL statement waits for its table lock before it gives up for this time (no lock queue behind it). */
const ddlLockTimeout = '2s';

/** In a transaction: waits for other upkeep, and makes its DDL give up on a table lock after `ddlLockTimeout`. */
async function lockPartitions(tx: EntityManager): Promise<void> {
  await queryWithParameters(tx, `select pg_advisory_xact_lock(?), set_config('lock_timeout', ?, true)`, [partitionLock, ddlLockTimeout]);
}

/** The range partitions of `jobs`, oldest first (the DEFAULT partition left out). */
export async function listJobPartitions(em: EntityManager): Promise<JobPartition[]> {
  const rows = await queryWithParameters<{ name: string; bound: string }>(
    em,
    `select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
       from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'jobs'::regclass`,
    [],
  );
  return rows
    .flatMap(({ name, bound }) => {
      const found = /FROM \('([0-9a-f-]{36})'\) TO \('([0-9a-f-]{36})'\)/.exec(bound);
      return found ? [{ name, fromMs: msOfUuid(found[1]!), toMs: msOfUuid(found[2]!) }] : [];
    })
    .sort((a, b) => a.fromMs - b.fromMs);
}

export interface PartitionUpkeep {
  /** Days of ids per partition (JOB_PARTITION_DAYS). */
  partitionDays: number;
  /** Seconds in one of those days (RETENTION_DAY_SECONDS; 86400 but in soaks). */
  daySeconds: number;
  /** Partitions kept ready past the current one. Default 2. */
  ahead?: number;
  now?: Date;
}

/**
 * Creates the partitions of `jobs` and `batch_items` that the current period (of `partitionDays`, aligned
 * to the Unix epoch) and the next `ahead` ones need, skipping ranges existing partitions cover (after a
 * change of JOB_PARTITION_DAYS a new partition starts where the old ones end, never overlapping). Under an advisory lock: concurrent callers wait, then find the work done. A partition whose range already
 * has rows in a DEFAULT partition (upkeep lapsed for a whole period) is left out, and those rows stay in the
 * DEFAULT partition. Returns the partitions created.
 */
export async function ensureJobPartitions(em: EntityManager, options: PartitionUpkeep): Promise<string[]> {
  const widthMs = options.partitionDays * options.daySeconds * 1000;
  const nowMs = (options.now ?? new Date()).getTime();
  const currentStart = Math.floor(nowMs / widthMs) * widthMs;
  const until = currentStart + ((options.ahead ?? 2) + 1) * widthMs;
  return inTransaction(em, async (tx) => {
    await lockPartitions(tx);
    const existing = await listJobPartitions(tx);
    const created: string[] = [];
    for (let fromMs = currentStart; fromMs < until;) {
      const containing = existing.find((partition) => partition.fromMs <= fromMs && fromMs < partition.toMs);
      if (containing) {
        fromMs = containing.toMs;
        continue;
      }
      // Up to the next existing partition, if one starts within the period (a changed JOB_PARTITION_DAYS).
      const toMs = Math.min(
        fromMs + widthMs,
        ...existing.filter((partition) => partition.fromMs > fromMs).map((partition) => partition.fromMs),
      );
      const name = jobPartitionName(fromMs);
      const bounds = `from ('${uuidv7AtMs(fromMs)}') to ('${uuidv7AtMs(toMs)}')`;
      try {
        await inTransaction(tx, async (savepoint) => {
          await queryWithParameters(savepoint, `create table "${name}" partition of jobs for values ${bounds}`, []);
          const items = batchItemsPartitionOf(name);
          await queryWithParameters(savepoint, `create table "${items}" partition of batch_items for values ${bounds}`, []);
          await queryWithParameters(
            savepoint,
            `alter table "${items}" add constraint "${items}_batch_id_foreign" foreign key (batch_id) references "${name}" (id) on update cascade on delete cascade`,
            [],
          );
        });
        created.push(name);
      } catch (error) {
        // 23514: rows of this range already sit in a DEFAULT partition (they stay there); 55P03: a table lock
        // not granted in time (the next upkeep tries again).
        const code = (error as { code?: string }).code;
        if (code === '55P03') break;
        if (code !== '23514') throw error;
      }
      fromMs = toMs;
    }
    return created;
  });
}

const finalList = finalStates.map((state) => `'${state}'`).join(', ');

export interface DroppedPartitions {
  dropped: string[];
  /** Rows the dropped partitions held. */
  jobs: number;
  batchItems: number;
  /** Idempotency keys of the dropped jobs, removed with them. */
  idempotencyKeys: number;
}

/**
 * Drops the partitions of `jobs` (with their `batch_items` twins) whose every id was minted before now less
 * `days` days and whose every row is final and finished before that cutoff; a partition holding an unfinished
 * job, or one finished since, stays (row deletes take what has expired in it). Each drop is its own short
 * transaction: the partition is locked against writes and checked, then its batch items' partition dropped,
 * then the partition itself (the only moments `batch_items` and `jobs` themselves are locked). The keys that named its jobs go
 * after it, `stepRows` at a time.
 */
export async function dropExpiredJobPartitions(
  em: EntityManager,
  options: { days: number; daySeconds: number; stepRows: number; now?: Date },
): Promise<DroppedPartitions> {
  const cutoffMs = (options.now ?? new Date()).getTime() - options.days * options.daySeconds * 1000;
  const candidates = (await listJobPartitions(em)).filter((partition) => partition.toMs <= cutoffMs);
  const result: DroppedPartitions = { dropped: [], jobs: 0, batchItems: 0, idempotencyKeys: 0 };
  for (const partition of candidates) {
    const dropped = await inTransaction(em, async (tx) => {
      const sql = <Row>(statement: string, bindings: unknown[] = []) => queryWithParameters<Row>(tx, statement, bindings);
      await lockPartitions(tx);
      await sql(`lock table "${partition.name}" in share mode`);
      // Unfinished jobs first, through their partial index: the usual reason to keep a partition costs no scan.
      const [unfinished] = await sql<{ found: boolean }>(
        `select exists (select 1 from "${partition.name}" where state in ('queued', 'delayed', 'active')) as found`,
      );
      if (unfinished?.found) return null;
      const [rows] = await sql<{ jobs: number; kept: number }>(
        `select count(*)::int as jobs,
                count(*) filter (where state not in (${finalList}) or finished_at is null
                                    or finished_at >= now() - ?::int * (?::int * interval '1 second'))::int as kept
           from "${partition.name}"`,
        [options.days, options.daySeconds],
      );
      if (!rows || rows.kept > 0) return null;
      const items = batchItemsPartitionOf(partition.name);
      const [batchItems] = await sql<{ n: number }>(`select count(*)::int as n from "${items}"`);
      await sql(`drop table "${items}"`);
      await sql(`drop table "${partition.name}"`);
      return { jobs: rows.jobs, batchItems: batchItems?.n ?? 0 };
    }).catch((error: unknown) => {
      // A lock not granted in time (55P03) or a deadlock with a writer (40P01): the next run tries again.
      const code = (error as { code?: string }).code;
      if (code === '55P03' || code === '40P01') return null;
      throw error;
    });
    if (!dropped) continue;
    result.dropped.push(partition.name);
    result.jobs += dropped.jobs;
    result.batchItems += dropped.batchItems;
    result.idempotencyKeys += await deleteIdempotencyKeysInRange(em, partition, options.stepRows);
  }
  return result;
}

/** Deletes the keys naming jobs of the partition's id range, `stepRows` per statement. */
async function deleteIdempotencyKeysInRange(em: EntityManager, partition: JobPartition, stepRows: number): Promise<number> {
  let deleted = 0;
  for (;;) {
    const [gone] = await em.getConnection().execute<Array<{ n: number }>>(
      `with gone as (
         delete from job_idempotency_keys where (customer_id, idempotency_key) in (
           select customer_id, idempotency_key from job_idempotency_keys where job_id >= ?::uuid and job_id < ?::uuid limit ?)
         returning 1)
       select count(*)::int as n from gone`,
      [uuidv7AtMs(partition.fromMs), uuidv7AtMs(partition.toMs), stepRows],
    );
    deleted += gone?.n ?? 0;
    if ((gone?.n ?? 0) < stepRows) return deleted;
  }
}
