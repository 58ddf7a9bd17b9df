import type { EntityManager } from '@mikro-orm/postgresql';
import { deleteBatchItemsOf, deleteKeysOfGone } from './expire-jobs.js';

/**
 * One customer's jobs, for offboarding (db/offboarding/): what the export reads, what the delete checks,
 * cancels and removes. The statements on `jobs` live here, as every other statement on the table does.
 */

/** How the export reads jobs and a batch's items (see db/offboarding/customer-export.ts, `ExportKind`). */
export const jobExportKinds = [
  { kind: 'job', select: 'j.*', from: 'jobs j where j.customer_id = ?', order: 'j.id' },
  {
    kind: 'batch_item',
    select: 'i.*',
    from: `batch_items i join jobs j on j.id = i.batch_id where j.customer_id = ? and j.type = 'batch'`,
    order: 'i.batch_id, i.index',
  },
] as const;

export interface UnfinishedJobs {
  queued: number;
  delayed: number;
  active: number;
}

/** The customer's unfinished jobs by state (the partial index of unfinished rows answers it). */
export async function unfinishedJobsOf(em: EntityManager, customerId: string): Promise<UnfinishedJobs> {
  const [row] = await em.getConnection().execute<UnfinishedJobs[]>(
    `select count(*) filter (where state = 'queued')::int as queued,
            count(*) filter (where state = 'delayed')::int as delayed,
            count(*) filter (where state = 'active')::int as active
       from jobs where customer_id = ? and state in ('queued', 'delayed', 'active')`,
    [customerId],
  );
  return row ?? { queued: 0, delayed: 0, active: 0 };
}

/** Up to `limit` of the customer's unfinished jobs' ids. */
export async function unfinishedJobIds(em: EntityManager, customerId: string, limit: number): Promise<string[]> {
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`select id from jobs where customer_id = ? and state in ('queued', 'delayed', 'active') limit ?`, [
      customerId,
      limit,
    ]);
  return rows.map((row) => row.id);
}

export interface DeleteJobsStep {
  /** The last job id read: the next step reads past it; null when nothing was left. */
  lastId: string | null;
  jobs: number;
  batchItems: number;
  /** Idempotency keys that named the deleted jobs. */
  idempotencyKeys: number;
}

/**
 * Deletes the customer's next `stepRows` finished jobs after `afterId` (in id order), a batch's items first
 * in slices of `stepRows` (the foreign key would cascade them, but all at once). An unfinished job stays.
 */
export async function deleteCustomerJobsStep(
  em: EntityManager,
  options: { customerId: string; afterId: string | null; stepRows: number },
): Promise<DeleteJobsStep> {
  const connection = em.getConnection();
  const ids = await connection.execute<Array<{ id: string }>>(
    `select id from jobs where customer_id = ? and id > ?::uuid and state not in ('queued', 'delayed', 'active') order by id limit ?`,
    [options.customerId, options.afterId ?? '00000000-0000-0000-0000-000000000000', options.stepRows],
  );
  if (ids.length === 0) return { lastId: null, jobs: 0, batchItems: 0, idempotencyKeys: 0 };
  const idArray = `{${ids.map((row) => row.id).join(',')}}`;
  const batchItems = await deleteBatchItemsOf(em, idArray, options.stepRows);
  const [gone] = await connection.execute<Array<{ n: number; keys: number }>>(
    `with gone as (delete from jobs where id = any(?::uuid[]) and state not in ('queued', 'delayed', 'active') returning id),
     ${deleteKeysOfGone}`,
    [idArray],
  );
  return { lastId: ids.at(-1)!.id, jobs: gone?.n ?? 0, batchItems, idempotencyKeys: gone?.keys ?? 0 };
}
