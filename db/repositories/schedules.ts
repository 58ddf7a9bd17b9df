import type { EntityManager } from '@mikro-orm/postgresql';
import type { Schedule } from '../entities/schedule.entity.js';
import type { Tier } from '../entities/service-instance.entity.js';
import { readPage, type PageBound, type PageRows } from '../page-budget.js';
import { inCustomerScope } from '../transaction.js';
import { lastScheduleRunSql } from '../jobs/schedule-runs.js';

const scheduleColumns = `id, customer_id as "customerId", name, cron, every_ms as "everyMs", tz, job_type as "jobType", payload, paused,
  created_at as "createdAt", updated_at as "updatedAt"`;

// every_ms is a bigint, which the driver hands back as a string.
const toSchedule = (row: Schedule): Schedule => ({ ...row, everyMs: row.everyMs === null ? null : Number(row.everyMs) });

export type NewSchedule = Pick<Schedule, 'id' | 'customerId' | 'name' | 'cron' | 'everyMs' | 'tz' | 'jobType' | 'payload'>;

export type UpsertOutcome =
  | { kind: 'created'; schedule: Schedule }
  /** `previous` is the definition it replaced: its job type may name another queue. */
  | { kind: 'updated'; schedule: Schedule; previous: Schedule }
  | { kind: 'limit-reached' };

/**
 * Creates the schedule, or replaces the definition of the customer's schedule of that name (keeping its
 * paused state). A new one past `maxPerCustomer` is refused. A per-customer advisory lock makes the
 * count and the insert one step, so concurrent creates cannot pass the limit.
 */
export async function upsertSchedule(em: EntityManager, row: NewSchedule, maxPerCustomer: number): Promise<UpsertOutcome> {
  return inCustomerScope(em, 'schedules', row.customerId, async (tx) => {
    const [previous] = await tx.execute<Schedule[]>(`select ${scheduleColumns} from schedules where customer_id = ? and name = ?`, [
      row.customerId,
      row.name,
    ]);
    if (!previous) {
      const [counted] = await tx.execute<Array<{ count: string }>>(`select count(*) as count from schedules where customer_id = ?`, [
        row.customerId,
      ]);
      if (Number(counted?.count ?? 0) >= maxPerCustomer) return { kind: 'limit-reached' } as const;
    }
    const [saved] = await tx.execute<Schedule[]>(
      `insert into schedules (id, customer_id, name, cron, every_ms, tz, job_type, payload)
       values (?, ?, ?, ?, ?, ?, ?, ?::jsonb)
       on conflict (customer_id, name) do update
          set cron = excluded.cron, every_ms = excluded.every_ms, tz = excluded.tz, job_type = excluded.job_type,
              payload = excluded.payload, updated_at = now()
       returning ${scheduleColumns}`,
      [row.id, row.customerId, row.name, row.cron, row.everyMs, row.tz, row.jobType, JSON.stringify(row.payload ?? {})],
    );
    const schedule = toSchedule(saved as Schedule);
    return previous ? { kind: 'updated', schedule, previous: toSchedule(previous) } : { kind: 'created', schedule };
  });
}

export async function findSchedule(em: EntityManager, customerId: string, name: string): Promise<Schedule | null> {
  const rows = await em
    .getConnection()
    .execute<Schedule[]>(`select ${scheduleColumns} from schedules where customer_id = ? and name = ?`, [customerId, name]);
  return rows[0] ? toSchedule(rows[0]) : null;
}

/**
 * A page of the customer's schedules by name after `afterName` (keyset): at most `bound.limit`, fewer when their
 * payloads (what GET /schedules shows of each job) add up over `bound.maxBytes` (always at least one).
 */
export async function listSchedules(
  em: EntityManager,
  customerId: string,
  afterName: string | undefined,
  bound: PageBound,
): Promise<PageRows<Schedule>> {
  const params: unknown[] = [customerId];
  if (afterName !== undefined) params.push(afterName);
  params.push(bound.limit + 1);
  const candidates = {
    text: `select ${scheduleColumns} from schedules where customer_id = ? ${afterName !== undefined ? 'and name > ?' : ''} order by name limit ?`,
    params,
  };
  const found = await readPage<Schedule>(em, candidates, { orderBy: 'name', bytes: 'octet_length(payload::text)' }, bound);
  return { ...found, rows: found.rows.map(toSchedule) };
}

export async function setSchedulePaused(em: EntityManager, customerId: string, name: string, paused: boolean): Promise<Schedule | null> {
  const rows = await em
    .getConnection()
    .execute<Schedule[]>(
      `update schedules set paused = ?, updated_at = now() where customer_id = ? and name = ? returning ${scheduleColumns}`,
      [paused, customerId, name],
    );
  return rows[0] ? toSchedule(rows[0]) : null;
}

export async function deleteSchedule(em: EntityManager, customerId: string, name: string): Promise<boolean> {
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`delete from schedules where customer_id = ? and name = ? returning id`, [customerId, name]);
  return rows.length > 0;
}

/** A schedule as a run sees it: its definition, and the state of the customer's service the run counts against. */
export interface ScheduleRun {
  schedule: Schedule;
  /** Null when the customer has no instance of the service (never enabled). */
  service: { tier: Tier; enabled: boolean; suspendedReason: string | null } | null;
}

/** The schedule and its customer's `serviceType` instance, in one round trip; null when the schedule is gone. */
export async function findScheduleRun(
  em: EntityManager,
  customerId: string,
  name: string,
  serviceType: string,
): Promise<ScheduleRun | null> {
  const [row] = await em
    .getConnection()
    .execute<Array<Schedule & { tier: Tier | null; enabled: boolean | null; suspendedReason: string | null }>>(
      `select ${scheduleColumns}, service.tier, service.enabled, service.suspended_reason as "suspendedReason"
       from schedules
       left join lateral (select tier, enabled, suspended_reason from service_instances s where s.customer_id = schedules.customer_id and s.service_type = ?) service on true
      where customer_id = ? and name = ?`,
      [serviceType, customerId, name],
    );
  if (!row) return null;
  const { tier, enabled, suspendedReason, ...schedule } = row;
  return { schedule: toSchedule(schedule), service: tier === null ? null : { tier, enabled: enabled === true, suspendedReason } };
}

/** An active schedule as the restore reads it: with, for an `every_ms` one, when it last ran (null for a cron one). */
export type ActiveSchedule = Schedule & { lastRunAt: Date | null };

/**
 * Schedules that are not paused, by id after `afterId` (keyset): what Redis must hold. Each `every_ms` one
 * comes with its last run, so that a scheduler written back from it fires an interval after that run rather
 * than at once (queue/schedules/user-schedulers.ts).
 */
export async function listActiveSchedules(em: EntityManager, afterId: string | null, limit: number): Promise<ActiveSchedule[]> {
  const rows = await em.getConnection().execute<Array<Schedule & { lastRunAt: Date | string | null }>>(
    `select ${scheduleColumns},
            case when every_ms is not null then ${lastScheduleRunSql('schedules.customer_id', 'schedules.name')} end as "lastRunAt"
       from schedules where not paused and id > ? order by id limit ?`,
    [afterId ?? '00000000-0000-0000-0000-000000000000', limit],
  );
  return rows.map(({ lastRunAt, ...row }) => ({ ...toSchedule(row), lastRunAt: lastRunAt ? new Date(lastRunAt) : null }));
}
