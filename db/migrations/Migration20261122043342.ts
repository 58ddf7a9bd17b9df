import { Migration } from '@mikro-orm/migrations';

export class Migration20261122043342 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "batch_items" ("batch_id" uuid not null, "index" int not null, "substrate_id" text not null, "state" text not null, "result" jsonb null, "error" text null, constraint "batch_items_pkey" primary key ("batch_id", "index"));`);

    this.addSql(`create table "relationships" ("id" uuid not null, "customer_id" uuid not null, "source_id" text not null, "target_id" text not null, "type" text not null, "metadata" jsonb not null default '{}', "created_at" timestamptz not null default now(), constraint "relationships_pkey" primary key ("id"));`);
    this.addSql(`create index "relationships_source_index" on "relationships" ("source_id", "type");`);
    this.addSql(`create index "relationships_target_index" on "relationships" ("target_id", "type");`);
    this.addSql(`alter table "relationships" add constraint "relationships_edge_unique" unique ("customer_id", "source_id", "target_id", "type");`);

    this.addSql(`alter table "batch_items" add constraint "batch_items_batch_id_foreign" foreign key ("batch_id") references "jobs" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "relationships" add constraint "relationships_source_id_foreign" foreign key ("source_id") references "substrates" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "relationships" add constraint "relationships_target_id_foreign" foreign key ("target_id") references "substrates" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "batch_items" cascade;`);

    this.addSql(`drop table if exists "relationships" cascade;`);
  }

}
