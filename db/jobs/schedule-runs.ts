import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * SQL for when a customer's schedule last ran, given SQL for its customer id and name (a placeholder or a
 * column): the `created_at` of its newest job (`jobs_schedule_index`), null if none is left (it never ran, or
 * retention removed its runs). Runs of an earlier schedule of the same name count too: `GET /jobs?schedule=`
 * lists them under that name as well.
 */
export const lastScheduleRunSql = (customerIdSql: string, nameSql: string) =>
  `(select j.created_at from jobs j where j.customer_id = ${customerIdSql} and j.schedule_name = ${nameSql} order by j.id desc limit 1)`;

/** When the schedule last ran (its newest job), or null: a scheduler re-created for an `every_ms` one counts its next run from it. */
export async function lastScheduleRunAt(em: EntityManager, customerId: string, name: string): Promise<Date | null> {
  const [row] = await em
    .getConnection()
    .execute<Array<{ lastRunAt: Date | string | null }>>(`select ${lastScheduleRunSql('?', '?')} as "lastRunAt"`, [customerId, name]);
  return row?.lastRunAt ? new Date(row.lastRunAt) : null;
}
