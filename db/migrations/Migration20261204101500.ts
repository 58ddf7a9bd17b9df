import { Migration } from '@mikro-orm/migrations';

/**
 * Hand-written (the MikroORM CLI does not generate partitions; the snapshot was generated from the entities):
 * `jobs` and `batch_items` become range-partitioned by job id, and idempotency keys move to their own table.
 *
 * Ids are UUIDv7 (their first 48 bits the creation time in ms), so id ranges are time ranges. This creates
 * one partition per 7 days of ids (aligned to the Unix epoch, named `jobs_pYYYYMMDDHHMMSS` after the start
 * of their range, `batch_items_p…` the same range of batch ids) from the week of the oldest UUIDv7 job (at
 * most five years back) to two weeks ahead, plus a DEFAULT partition each for every other id (older rows,
 * the UUIDv8 ids of scheduled runs recorded by early versions). db/jobs/job-partitions.ts continues them.
 *
 * A unique index on a partitioned table must contain the partition key, so `(customer_id, idempotency_key)`
 * cannot stay unique on `jobs`: `job_idempotency_keys` holds which job each key names. Each `batch_items`
 * partition has its own foreign key to its `jobs` twin (same range; the DEFAULT ones to each other) rather than
 * one to the partitioned `jobs`: for that one PostgreSQL adds a constraint per `jobs` partition on
 * `batch_items`, which MikroORM's schema reader takes for the table's own (the snapshot would never match), and
 * dropping a `jobs` partition would need a DETACH that checks all of `batch_items`.
 *
 * Both directions copy every row and rebuild every index inside the migration's transaction: `jobs` is
 * unavailable meanwhile (README, "Upgrading").
 */
export class Migration20261204101500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "job_idempotency_keys" ("customer_id" uuid not null, "idempotency_key" text not null, "job_id" uuid not null, "created_at" timestamptz not null default now(), constraint "job_idempotency_keys_pkey" primary key ("customer_id", "idempotency_key"));`);
    this.addSql(`insert into "job_idempotency_keys" ("customer_id", "idempotency_key", "job_id", "created_at") select "customer_id", "idempotency_key", "id", "created_at" from "jobs" where "idempotency_key" is not null;`);
    this.addSql(`create index "job_idempotency_keys_job_id_index" on "job_idempotency_keys" ("job_id");`);

    // The old tables keep their rows until copied; their constraints and indexes go now, so the names are free.
    this.addSql(`alter table "batch_items" drop constraint "batch_items_batch_id_foreign";`);
    this.addSql(`alter table "batch_items" drop constraint "batch_items_pkey";`);
    this.addSql(`alter table "jobs" drop constraint "jobs_customer_idempotency_key_unique";`);
    this.addSql(`alter table "jobs" drop constraint "jobs_pkey";`);
    for (const index of jobIndexes) this.addSql(`drop index "${index.name}";`);
    this.addSql(`alter table "jobs" rename to "jobs_unpartitioned";`);
    this.addSql(`alter table "batch_items" rename to "batch_items_unpartitioned";`);

    this.addSql(`create table "jobs" (like "jobs_unpartitioned" including defaults including constraints) partition by range ("id");`);
    this.addSql(`create table "batch_items" (like "batch_items_unpartitioned" including defaults including constraints) partition by range ("batch_id");`);
    this.addSql(`create table "jobs_default" partition of "jobs" default;`);
    this.addSql(`create table "batch_items_default" partition of "batch_items" default;`);
    this.addSql(createWeeklyPartitions);

    this.addSql(`insert into "jobs" select * from "jobs_unpartitioned";`);
    this.addSql(`alter table "jobs" add constraint "jobs_pkey" primary key ("id");`);
    this.addSql(`insert into "batch_items" select * from "batch_items_unpartitioned";`);
    this.addSql(`alter table "batch_items" add constraint "batch_items_pkey" primary key ("batch_id", "index");`);
    this.addSql(addPartitionForeignKeys);
    for (const index of jobIndexes) this.addSql(index.create);
    this.addSql(`drop table "batch_items_unpartitioned";`);
    this.addSql(`drop table "jobs_unpartitioned";`);
  }

  override async down(): Promise<void> {
    this.addSql(dropPartitionForeignKeys);
    this.addSql(`alter table "batch_items" drop constraint "batch_items_pkey";`);
    this.addSql(`alter table "jobs" drop constraint "jobs_pkey";`);
    for (const index of jobIndexes) this.addSql(`drop index "${index.name}";`);
    this.addSql(`alter table "jobs" rename to "jobs_partitioned";`);
    this.addSql(`alter table "batch_items" rename to "batch_items_partitioned";`);

    this.addSql(`create table "jobs" (like "jobs_partitioned" including defaults including constraints);`);
    this.addSql(`create table "batch_items" (like "batch_items_partitioned" including defaults including constraints);`);
    this.addSql(`insert into "jobs" select * from "jobs_partitioned";`);
    this.addSql(`alter table "jobs" add constraint "jobs_pkey" primary key ("id");`);
    // A key another job has taken over since (after its 24 h window) leaves the older job without it, as before.
    this.addSql(`update "jobs" j set "idempotency_key" = null where j."idempotency_key" is not null and not exists (select 1 from "job_idempotency_keys" k where k."job_id" = j."id" and k."customer_id" = j."customer_id" and k."idempotency_key" = j."idempotency_key");`);
    this.addSql(`alter table "jobs" add constraint "jobs_customer_idempotency_key_unique" unique ("customer_id", "idempotency_key");`);
    this.addSql(`insert into "batch_items" select * from "batch_items_partitioned";`);
    this.addSql(`alter table "batch_items" add constraint "batch_items_pkey" primary key ("batch_id", "index");`);
    this.addSql(`alter table "batch_items" add constraint "batch_items_batch_id_foreign" foreign key ("batch_id") references "jobs" ("id") on update cascade on delete cascade;`);
    for (const index of jobIndexes) this.addSql(index.create);
    this.addSql(`drop table "batch_items_partitioned";`);
    this.addSql(`drop table "jobs_partitioned";`);
    this.addSql(`drop table "job_idempotency_keys";`);
  }

}

/** Every index of `jobs` but its primary key, as the entity declares them. */
const jobIndexes = [
  ['jobs_customer_id_id_index', `("customer_id", "id")`],
  ['jobs_unfinished_index', `("created_at") where "state" in ('queued', 'delayed', 'active')`],
  ['jobs_customer_unfinished_index', `("customer_id", "state") where "state" in ('queued', 'delayed', 'active')`],
  ['jobs_created_at_index', `("created_at")`],
  ['jobs_schedule_index', `("customer_id", "schedule_name", "id") where "schedule_name" is not null`],
  ['jobs_customer_state_index', `("customer_id", "state", "id") where "state" <> 'completed'`],
  ['jobs_customer_type_state_index', `("customer_id", "type", "state", "id") where "state" <> 'completed'`],
  ['jobs_state_index', `("state", "id") where "state" <> 'completed'`],
  ['jobs_retry_of_index', `("retry_of") where "retry_of" is not null`],
  ['jobs_error_trgm_index', `using gin ("error" gin_trgm_ops) where "error" is not null`],
].map(([name, definition]) => ({ name: name!, create: `create index "${name}" on "jobs" ${definition};` }));

/** Weekly partitions of both tables from the oldest UUIDv7 job's week (at most 260 weeks back) to two weeks ahead. */
const createWeeklyPartitions = `do $$
declare
  width_ms constant bigint := 7 * 86400000;
  now_ms constant bigint := floor(extract(epoch from clock_timestamp()) * 1000);
  current_ms constant bigint := now_ms / width_ms * width_ms;
  from_ms bigint := current_ms;
  oldest uuid;
  suffix text;
  bounds text;
begin
  select "id" into oldest from "jobs_unpartitioned" where substr("id"::text, 15, 1) = '7' order by "id" limit 1;
  if oldest is not null then
    from_ms := least(current_ms, greatest(('x' || substr(replace(oldest::text, '-', ''), 1, 12))::bit(48)::bigint / width_ms * width_ms, current_ms - 260 * width_ms));
  end if;
  while from_ms < current_ms + 3 * width_ms loop
    suffix := to_char(to_timestamp(from_ms / 1000.0) at time zone 'UTC', 'YYYYMMDDHH24MISS');
    bounds := format('from (%L) to (%L)',
      regexp_replace(lpad(to_hex(from_ms), 12, '0'), '^(.{8})(.{4})$', '\\1-\\2-0000-0000-000000000000'),
      regexp_replace(lpad(to_hex(from_ms + width_ms), 12, '0'), '^(.{8})(.{4})$', '\\1-\\2-0000-0000-000000000000'));
    execute format('create table %I partition of "jobs" for values %s', 'jobs_p' || suffix, bounds);
    execute format('create table %I partition of "batch_items" for values %s', 'batch_items_p' || suffix, bounds);
    from_ms := from_ms + width_ms;
  end loop;
end $$;`;

/** Each partition of `batch_items` references its `jobs` twin: `batch_items_pX` → `jobs_pX`, the DEFAULT ones likewise. */
const addPartitionForeignKeys = `do $$
declare
  part record;
begin
  for part in select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = '"batch_items"'::regclass loop
    execute format('alter table %I add constraint %I foreign key ("batch_id") references %I ("id") on update cascade on delete cascade',
      part.name, part.name || '_batch_id_foreign', regexp_replace(part.name, '^batch_items_', 'jobs_'));
  end loop;
end $$;`;

/** The foreign keys of the partitions of `batch_items` (they depend on the `jobs` partitions' primary keys). */
const dropPartitionForeignKeys = `do $$
declare
  fk record;
begin
  for fk in select k.conrelid::regclass::text as tbl, k.conname from pg_constraint k
             where k.contype = 'f' and k.conrelid in (select inhrelid from pg_inherits where inhparent = '"batch_items"'::regclass) loop
    execute format('alter table %s drop constraint %I', fk.tbl, fk.conname);
  end loop;
end $$;`;
