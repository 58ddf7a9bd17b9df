import { EntitySchema } from '@mikro-orm/core';

/**
 * A customer's schedule. BullMQ's job scheduler does the firing; this row is the record, so a paused
 * schedule (whose BullMQ scheduler is removed) survives and can be resumed.
 */
export interface Schedule {
  id: string;
  customerId: string;
  name: string;
  /** Exactly one of `cron` and `everyMs` is set. */
  cron: string | null;
  everyMs: number | null;
  tz: string;
  jobType: string;
  payload: unknown;
  paused: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export const ScheduleSchema = new EntitySchema<Schedule>({
  name: 'Schedule',
  tableName: 'schedules',
  uniques: [{ name: 'schedules_customer_id_name_unique', properties: ['customerId', 'name'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    name: { type: 'text' },
    cron: { type: 'text', nullable: true },
    everyMs: { type: 'bigint', nullable: true },
    tz: { type: 'text', default: 'UTC' },
    jobType: { type: 'text' },
    payload: { type: 'json' },
    paused: { type: 'boolean', default: false },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    updatedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
