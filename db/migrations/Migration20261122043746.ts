import { Migration } from '@mikro-orm/migrations';

export class Migration20261122043746 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "schedules" ("id" uuid not null, "customer_id" uuid not null, "name" text not null, "cron" text null, "every_ms" bigint null, "tz" text not null default 'UTC', "job_type" text not null, "payload" jsonb not null, "paused" boolean not null default false, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), constraint "schedules_pkey" primary key ("id"));`);
    this.addSql(`alter table "schedules" add constraint "schedules_customer_id_name_unique" unique ("customer_id", "name");`);

    this.addSql(`create table "webhook_account_secrets" ("customer_id" uuid not null, "encrypted_secret" text not null, "created_at" timestamptz not null default now(), constraint "webhook_account_secrets_pkey" primary key ("customer_id"));`);

    this.addSql(`create table "webhook_endpoints" ("id" uuid not null, "customer_id" uuid not null, "url" text not null, "events" text[] not null, "encrypted_secret" text not null, "created_at" timestamptz not null default now(), constraint "webhook_endpoints_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_endpoints_customer_id_id_index" on "webhook_endpoints" ("customer_id", "id");`);

    this.addSql(`create table "webhook_deliveries" ("id" uuid not null, "customer_id" uuid not null, "endpoint_id" uuid null, "job_id" uuid null, "url" text not null, "event_type" text not null, "payload" jsonb not null, "message_id" text not null, "dedupe_key" text not null, "state" text not null default 'pending', "attempts" int not null default 0, "queue_job_id" text null, "created_at" timestamptz not null default now(), "finished_at" timestamptz null, constraint "webhook_deliveries_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_deliveries_customer_id_index" on "webhook_deliveries" ("customer_id");`);
    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_dedupe_key_unique" unique ("dedupe_key");`);
    this.addSql(`create index "webhook_deliveries_endpoint_id_id_index" on "webhook_deliveries" ("endpoint_id", "id");`);

    this.addSql(`create table "webhook_attempts" ("id" uuid not null, "delivery_id" uuid not null, "attempt" int not null, "status_code" int null, "duration_ms" int not null, "error" text null, "at" timestamptz not null default now(), constraint "webhook_attempts_pkey" primary key ("id"));`);
    this.addSql(`alter table "webhook_attempts" add constraint "webhook_attempts_delivery_id_attempt_unique" unique ("delivery_id", "attempt");`);

    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_endpoint_id_foreign" foreign key ("endpoint_id") references "webhook_endpoints" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "webhook_attempts" add constraint "webhook_attempts_delivery_id_foreign" foreign key ("delivery_id") references "webhook_deliveries" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_deliveries" drop constraint "webhook_deliveries_endpoint_id_foreign";`);

    this.addSql(`alter table "webhook_attempts" drop constraint "webhook_attempts_delivery_id_foreign";`);

    this.addSql(`drop table if exists "schedules" cascade;`);

    this.addSql(`drop table if exists "webhook_account_secrets" cascade;`);

    this.addSql(`drop table if exists "webhook_endpoints" cascade;`);

    this.addSql(`drop table if exists "webhook_deliveries" cascade;`);

    this.addSql(`drop table if exists "webhook_attempts" cascade;`);
  }

}
