import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { deleteCustomerJobsStep, unfinishedJobsOf, type UnfinishedJobs } from '../jobs/customer-jobs.js';
import { inTransaction } from '../transaction.js';
import { billableStatus, meteringWatermark } from '../repositories/metering.js';

/**
 * Deleting (offboarding) a customer (SPEC §9): first the lock-out, one short transaction that marks the
 * customer deleted, replaces its name and its users' emails with tombstones, makes their passwords
 * unusable, ends their sessions and revokes its API keys; then the purge, in steps of at most `stepRows`
 * rows, each its own statement (as retention does): no long locks, and a purge that stops half way is
 * finished by running it again.
 *
 * Kept, by design: the customer row (anonymised) and its anonymised users, so every row that names them
 * still points at something; its service rows (the tier prices a final bill); usage records, charges,
 * the ledger (accounts, transactions, entries), terms-of-service acceptances and the admin audit log —
 * the billing evidence; and request logs that metering or billing still needs (past the metering
 * watermark, or in an hour whose usage record is not charged yet), which retention removes once billed.
 */

export interface CustomerToDelete {
  id: string;
  deletedAt: string | null;
  admins: number;
  unfinished: UnfinishedJobs;
}

/** The customer, whether it is deleted already, its admin users and its unfinished jobs; null when there is none. */
export async function findCustomerToDelete(em: EntityManager, customerId: string): Promise<CustomerToDelete | null> {
  const [row] = await em.getConnection().execute<Array<{ id: string; deleted_at: Date | null; admins: number }>>(
    `select c.id, c.deleted_at, (select count(*)::int from users u where u.customer_id = c.id and u.role = 'admin') as admins
         from customers c where c.id = ?`,
    [customerId],
  );
  if (!row) return null;
  return {
    id: row.id,
    deletedAt: row.deleted_at ? new Date(row.deleted_at).toISOString() : null,
    admins: row.admins,
    unfinished: await unfinishedJobsOf(em, customerId),
  };
}

/** The names of the customer's schedules (at most MAX_SCHEDULES_PER_CUSTOMER), whose clocks live in Redis. */
export async function customerScheduleNames(em: EntityManager, customerId: string): Promise<string[]> {
  const rows = await em.getConnection().execute<Array<{ name: string }>>(`select name from schedules where customer_id = ?`, [customerId]);
  return rows.map((row) => row.name);
}

/** A bcrypt-shaped hash of random bytes nobody kept: no password matches it, and verifying it still costs one comparison. */
const unusableHash = () =>
  `$2b$12$${randomBytes(40)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '.')
    .slice(0, 53)}`;

/** The lock-out (see above). Returns when the customer was marked deleted (the first time). */
export async function lockOutCustomer(em: EntityManager, customerId: string): Promise<{ deletedAt: string }> {
  return inTransaction(em, async (tx) => {
    const [customer] = await tx.execute<Array<{ deleted_at: Date }>>(
      `update customers set deleted_at = coalesce(deleted_at, now()), name = 'deleted-' || id::text
        where id = ? returning deleted_at`,
      [customerId],
    );
    await tx.execute(
      `update users set email = 'deleted-' || id::text || '@deleted.invalid', password_hash = ?
        where customer_id = ? and email <> 'deleted-' || id::text || '@deleted.invalid'`,
      [unusableHash(), customerId],
    );
    await tx.execute(`delete from refresh_tokens where user_id in (select id from users where customer_id = ?)`, [customerId]);
    await tx.execute(`update api_keys set revoked_at = now() where customer_id = ? and revoked_at is null`, [customerId]);
    await tx.execute(`delete from webhook_account_secrets where customer_id = ?`, [customerId]);
    return { deletedAt: new Date(customer!.deleted_at).toISOString() };
  });
}

/** What the purge removed. */
export interface PurgeCounts {
  jobs: number;
  batch_items: number;
  substrates: number;
  relationships: number;
  schedules: number;
  webhook_endpoints: number;
  webhook_deliveries: number;
  webhook_attempts: number;
  api_keys: number;
  request_logs: number;
}

/** What stays for the books (counted after the purge). */
export interface KeptCounts {
  usage_records: number;
  charges: number;
  ledger_transactions: number;
  /** Request logs metering or billing still needs; retention removes them once billed. */
  request_logs: number;
}

export interface PurgeOptions {
  stepRows: number;
  signal?: AbortSignal;
}

type Execute = <T>(sql: string, params: unknown[]) => Promise<T[]>;

/** Runs `statement` (which deletes at most `stepRows` rows and answers `n`) until a step deletes fewer. */
async function untilDone(execute: Execute, statement: string, params: unknown[], stepRows: number, signal?: AbortSignal) {
  let total = 0;
  for (;;) {
    signal?.throwIfAborted();
    const [row] = await execute<{ n: number }>(`with gone as (${statement} returning 1) select count(*)::int as n from gone`, params);
    total += row?.n ?? 0;
    if ((row?.n ?? 0) < stepRows) return total;
  }
}

/**
 * Removes everything of the customer's but the billing evidence, in steps. Call after `lockOutCustomer`
 * (so nothing new arrives) and after its schedules' clocks are stopped and its unfinished jobs cancelled:
 * only finished jobs are deleted.
 */
export async function purgeCustomer(
  em: EntityManager,
  customerId: string,
  options: PurgeOptions,
): Promise<{ deleted: PurgeCounts; keptRequestLogs: number }> {
  const { stepRows, signal } = options;
  const execute: Execute = (sql, params) => em.getConnection().execute(sql, params);
  const counts: PurgeCounts = {
    jobs: 0,
    batch_items: 0,
    substrates: 0,
    relationships: 0,
    schedules: 0,
    webhook_endpoints: 0,
    webhook_deliveries: 0,
    webhook_attempts: 0,
    api_keys: 0,
    request_logs: 0,
  };
  /** Every row of `table` the customer owns (`customer_id`), `stepRows` at a time. */
  const deleteTheirs = (table: 'schedules' | 'webhook_endpoints' | 'relationships' | 'substrates' | 'api_keys') =>
    untilDone(
      execute,
      `delete from ${table} where id in (select id from ${table} where customer_id = ? limit ?)`,
      [customerId, stepRows],
      stepRows,
      signal,
    );

  counts.schedules = await deleteTheirs('schedules');

  // Deliveries with their attempts, a slice at a time (the foreign key would cascade them, all at once).
  for (;;) {
    signal?.throwIfAborted();
    const ids = await execute<{ id: string }>(`select id from webhook_deliveries where customer_id = ? order by id limit ?`, [
      customerId,
      stepRows,
    ]);
    if (ids.length === 0) break;
    const idArray = `{${ids.map((row) => row.id).join(',')}}`;
    counts.webhook_attempts += await untilDone(
      execute,
      `delete from webhook_attempts where id in (select id from webhook_attempts where delivery_id = any(?::uuid[]) limit ?)`,
      [idArray, stepRows],
      stepRows,
      signal,
    );
    counts.webhook_deliveries += await untilDone(
      execute,
      `delete from webhook_deliveries where id = any(?::uuid[])`,
      [idArray],
      stepRows,
      signal,
    );
  }
  counts.webhook_endpoints = await deleteTheirs('webhook_endpoints');

  // Finished jobs with a batch's items; an unfinished job (none, after the cancel) would stay.
  for (let afterId: string | null = null; ;) {
    signal?.throwIfAborted();
    const step = await deleteCustomerJobsStep(em, { customerId, afterId, stepRows });
    counts.jobs += step.jobs;
    counts.batch_items += step.batchItems;
    if (step.lastId === null) break;
    afterId = step.lastId;
  }

  counts.relationships = await deleteTheirs('relationships');
  await execute(`delete from customer_relationship_counts where customer_id = ?`, [customerId]);
  counts.substrates = await deleteTheirs('substrates');
  await execute(`delete from customer_substrate_counts where customer_id = ?`, [customerId]);
  counts.api_keys = await deleteTheirs('api_keys');
  const logs = await purgeRequestLogs(em, execute, customerId, options);
  counts.request_logs = logs.deleted;
  return { deleted: counts, keptRequestLogs: logs.kept };
}

/**
 * Request logs have no per-customer index (it would cost every API call), so they are read in id order,
 * `stepRows` ids per statement, from the oldest row to the metering watermark; of those the customer's go
 * unless an unbilled usage record still needs them (the rule retention follows, without the age). Rows
 * past the watermark (not metered yet) stay too. Returns how many went and how many stayed.
 */
async function purgeRequestLogs(
  em: EntityManager,
  execute: Execute,
  customerId: string,
  options: PurgeOptions,
): Promise<{ deleted: number; kept: number }> {
  const meteredUpTo = BigInt(await meteringWatermark(em));
  const [range] = await execute<{ low: string | null }>(`select (min(id) - 1)::text as low from request_logs`, []);
  let deleted = 0;
  let kept = 0;
  const step = BigInt(options.stepRows);
  for (let low = BigInt(range?.low ?? meteredUpTo); low < meteredUpTo; low += step) {
    options.signal?.throwIfAborted();
    const high = low + step < meteredUpTo ? low + step : meteredUpTo;
    // The read of `theirs` sees the rows as they were before the delete in the same statement.
    const [row] = await execute<{ n: number; theirs: number }>(
      `with gone as (
         delete from request_logs r
          where r.id > ?::bigint and r.id <= ?::bigint and r.customer_id = ?
            and (not (${billableStatus.replaceAll('status_code', 'r.status_code')})
                 or not exists (select 1 from usage_records u
                                 where u.customer_id = r.customer_id and u.service_type = r.service_type
                                   and u.window_start = date_trunc('hour', r.timestamp, 'UTC') and u.charged_usd_cents is null))
         returning 1)
       select (select count(*)::int from gone) as n,
              (select count(*)::int from request_logs where id > ?::bigint and id <= ?::bigint and customer_id = ?) as theirs`,
      [low.toString(), high.toString(), customerId, low.toString(), high.toString(), customerId],
    );
    deleted += row?.n ?? 0;
    kept += (row?.theirs ?? 0) - (row?.n ?? 0);
  }
  const [tail] = await execute<{ n: number }>(`select count(*)::int as n from request_logs where id > ?::bigint and customer_id = ?`, [
    meteredUpTo.toString(),
    customerId,
  ]);
  return { deleted, kept: kept + (tail?.n ?? 0) };
}

/** The billing evidence left after the purge (request logs are counted by the purge itself). */
export async function countKept(em: EntityManager, customerId: string): Promise<Omit<KeptCounts, 'request_logs'>> {
  const [row] = await em.getConnection().execute<Array<Omit<KeptCounts, 'request_logs'>>>(
    `select (select count(*)::int from usage_records where customer_id = ?) as usage_records,
            (select count(*)::int from billing_charges where customer_id = ?) as charges,
            (select count(*)::int from escrow_transactions where customer_id = ?) as ledger_transactions`,
    [customerId, customerId, customerId],
  );
  return row!;
}
