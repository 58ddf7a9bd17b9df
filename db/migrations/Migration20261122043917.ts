import { Migration } from '@mikro-orm/migrations';

export class Migration20261122043917 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "billing_charges" ("id" uuid not null, "customer_id" uuid not null, "idempotency_key" text not null, "amount_usd_cents" bigint not null, "lines" jsonb not null, "state" text not null, "tx_digest" text null, "error" text null, "created_at" timestamptz not null default now(), "settled_at" timestamptz null, constraint "billing_charges_pkey" primary key ("id"), constraint billing_charges_amount_positive_check check ("amount_usd_cents" > 0));`);
    this.addSql(`alter table "billing_charges" add constraint "billing_charges_idempotency_key_unique" unique ("idempotency_key");`);
    this.addSql(`create index "billing_charges_customer_id_index" on "billing_charges" ("customer_id");`);
    this.addSql(`create unique index "billing_charges_one_pending_unique" on "billing_charges" ("customer_id") where "state" = 'pending';`);

    this.addSql(`create table "escrow_accounts" ("id" text not null, "customer_id" uuid null, "kind" text not null, "balance_usd_cents" bigint not null default 0, "current_month_charged_usd_cents" bigint not null default 0, "last_month_charged_usd_cents" bigint not null default 0, "current_month_start" timestamptz not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), constraint "escrow_accounts_pkey" primary key ("id"), constraint escrow_accounts_customer_balance_check check ("kind" <> 'customer' or "balance_usd_cents" >= 0));`);
    this.addSql(`alter table "escrow_accounts" add constraint "escrow_accounts_customer_id_unique" unique ("customer_id");`);

    this.addSql(`create table "escrow_entries" ("id" bigserial primary key, "transaction_id" uuid not null, "account_id" text not null, "amount_usd_cents" bigint not null, "created_at" timestamptz not null default now());`);
    this.addSql(`create index "escrow_entries_transaction_id_index" on "escrow_entries" ("transaction_id");`);
    this.addSql(`create index "escrow_entries_account_id_index" on "escrow_entries" ("account_id");`);

    this.addSql(`create table "escrow_transactions" ("id" uuid not null, "customer_id" uuid not null, "tx_type" text not null, "amount_usd_cents" bigint not null, "tx_digest" text not null, "idempotency_key" text not null, "created_at" timestamptz not null default now(), constraint "escrow_transactions_pkey" primary key ("id"), constraint escrow_transactions_amount_positive_check check ("amount_usd_cents" > 0));`);
    this.addSql(`alter table "escrow_transactions" add constraint "escrow_transactions_tx_digest_unique" unique ("tx_digest");`);
    this.addSql(`alter table "escrow_transactions" add constraint "escrow_transactions_idempotency_key_unique" unique ("idempotency_key");`);
    this.addSql(`create index "escrow_transactions_customer_id_id_index" on "escrow_transactions" ("customer_id", "id");`);

    this.addSql(`create table "metering_watermarks" ("name" text not null, "last_id" bigint not null default 0, "updated_at" timestamptz not null default now(), constraint "metering_watermarks_pkey" primary key ("name"));`);

    this.addSql(`create table "request_logs" ("id" bigserial primary key, "timestamp" timestamptz not null, "customer_id" uuid not null, "service_type" text not null, "method" text not null, "status_code" smallint not null, "bytes_out" bigint not null, "received_at" timestamptz not null default now());`);

    this.addSql(`create table "usage_records" ("id" bigserial primary key, "customer_id" uuid not null, "service_type" text not null, "window_start" timestamptz not null, "window_end" timestamptz not null, "request_count" bigint not null default 0, "bytes_transferred" bigint not null default 0, "charged_usd_cents" bigint null, "charge_id" uuid null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), constraint usage_records_charged_non_negative_check check ("charged_usd_cents" is null or "charged_usd_cents" >= 0));`);
    this.addSql(`create index "usage_records_customer_window_index" on "usage_records" ("customer_id", "window_start");`);
    this.addSql(`create unique index "usage_records_open_window_unique" on "usage_records" ("customer_id", "service_type", "window_start") where "charge_id" is null and "charged_usd_cents" is null;`);
    this.addSql(`create index "usage_records_charge_id_index" on "usage_records" ("charge_id");`);

    this.addSql(`create table "vault_exports" ("id" uuid not null, "path" text not null, "row_count" int not null, "bytes" int not null, "sha256" text not null, "created_at" timestamptz not null default now(), constraint "vault_exports_pkey" primary key ("id"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "billing_charges" cascade;`);

    this.addSql(`drop table if exists "escrow_accounts" cascade;`);

    this.addSql(`drop table if exists "escrow_entries" cascade;`);

    this.addSql(`drop table if exists "escrow_transactions" cascade;`);

    this.addSql(`drop table if exists "metering_watermarks" cascade;`);

    this.addSql(`drop table if exists "request_logs" cascade;`);

    this.addSql(`drop table if exists "usage_records" cascade;`);

    this.addSql(`drop table if exists "vault_exports" cascade;`);
  }

}
