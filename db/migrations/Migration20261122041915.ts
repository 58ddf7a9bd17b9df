import { Migration } from '@mikro-orm/migrations';

export class Migration20261122041915 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "api_keys" ("id" uuid not null, "customer_id" uuid not null, "name" text not null, "service_type" text not null, "prefix" text not null, "key_hash" text not null, "encrypted_key" text not null, "expires_at" timestamptz null, "revoked_at" timestamptz null, "created_at" timestamptz not null default now(), constraint "api_keys_pkey" primary key ("id"));`);
    this.addSql(`create index "api_keys_customer_id_index" on "api_keys" ("customer_id");`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(`create table "customers" ("id" uuid not null, "name" text not null, "balance_usd_cents" bigint not null default 0, "max_monthly_usd_cents" bigint null, "created_at" timestamptz not null default now(), constraint "customers_pkey" primary key ("id"));`);

    this.addSql(`create table "jobs" ("id" uuid not null, "customer_id" uuid not null, "type" text not null, "state" text not null, "payload" jsonb not null, "result" jsonb null, "error" text null, "progress" jsonb null, "attempts_made" int not null default 0, "max_attempts" int not null default 3, "priority" int not null default 0, "delay_ms" int not null default 0, "webhook_url" text null, "idempotency_key" text null, "request_hash" text null, "created_at" timestamptz not null default now(), "started_at" timestamptz null, "finished_at" timestamptz null, constraint "jobs_pkey" primary key ("id"));`);
    this.addSql(`create index "jobs_customer_id_id_index" on "jobs" ("customer_id", "id");`);
    this.addSql(`create index "jobs_unfinished_index" on "jobs" ("created_at") where "state" in ('queued', 'delayed', 'active');`);
    this.addSql(`alter table "jobs" add constraint "jobs_customer_idempotency_key_unique" unique ("customer_id", "idempotency_key");`);

    this.addSql(`create table "refresh_tokens" ("id" uuid not null, "user_id" uuid not null, "family_id" uuid not null, "token_hash" text not null, "expires_at" timestamptz not null, "rotated_at" timestamptz null, "revoked_at" timestamptz null, "created_at" timestamptz not null default now(), constraint "refresh_tokens_pkey" primary key ("id"));`);
    this.addSql(`create index "refresh_tokens_user_id_index" on "refresh_tokens" ("user_id");`);
    this.addSql(`create index "refresh_tokens_family_id_index" on "refresh_tokens" ("family_id");`);
    this.addSql(`alter table "refresh_tokens" add constraint "refresh_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(`create table "service_instances" ("customer_id" uuid not null, "service_type" text not null, "tier" text not null default 'starter', "enabled" boolean not null default true, "suspended_reason" text null, "updated_at" timestamptz not null default now(), constraint "service_instances_pkey" primary key ("customer_id", "service_type"));`);

    this.addSql(`create table "substrates" ("id" text not null, "customer_id" uuid not null, "identity" text not null, "expression_type" text not null, "expression" text null, "value" double precision null, "metadata" jsonb not null default '{}', "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), constraint "substrates_pkey" primary key ("id"));`);
    this.addSql(`create index "substrates_customer_id_created_at_index" on "substrates" ("customer_id", "created_at");`);
    this.addSql(`create index "substrates_metadata_gin" on "substrates" using gin ("metadata" jsonb_path_ops);`);

    this.addSql(`create table "tos_acceptances" ("id" uuid not null, "user_id" uuid not null, "version" text not null, "accepted_at" timestamptz not null default now(), constraint "tos_acceptances_pkey" primary key ("id"));`);
    this.addSql(`alter table "tos_acceptances" add constraint "tos_acceptances_user_id_version_unique" unique ("user_id", "version");`);

    this.addSql(`create table "users" ("id" uuid not null, "customer_id" uuid not null, "email" text not null, "password_hash" text not null, "role" text not null default 'user', "created_at" timestamptz not null default now(), constraint "users_pkey" primary key ("id"));`);
    this.addSql(`create index "users_customer_id_index" on "users" ("customer_id");`);
    this.addSql(`alter table "users" add constraint "users_email_unique" unique ("email");`);
  }

}
