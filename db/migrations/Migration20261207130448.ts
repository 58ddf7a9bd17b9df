import { Migration } from '@mikro-orm/migrations';

/**
 * `customer_substrate_counts`: each customer's number of substrates, for the tier's cap (TIER_MAX_SUBSTRATES),
 * counted once here from the rows already stored. (The CLI's diff also re-added `jobs.bundle_id`: the hand-written
 * Migration20261205160000 adds it but left the snapshot without it; the snapshot has it now.)
 */
export class Migration20261207130448 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "customer_substrate_counts" ("customer_id" uuid not null, "substrates" int not null default 0, constraint "customer_substrate_counts_pkey" primary key ("customer_id"));`,
    );
    this.addSql(
      `insert into "customer_substrate_counts" ("customer_id", "substrates") select "customer_id", count(*) from "substrates" group by "customer_id";`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "customer_substrate_counts" cascade;`);
  }
}
