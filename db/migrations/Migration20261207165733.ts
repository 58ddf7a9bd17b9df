import { Migration } from '@mikro-orm/migrations';

/**
 * `customer_relationship_counts`: each customer's number of relationships, for the tier's cap
 * (TIER_MAX_RELATIONSHIPS), counted once here from the rows already stored and kept from then on by two
 * statement-level triggers on `relationships` (hand-written: the CLI generates no triggers), so every insert and
 * delete counts, a substrate's cascade included.
 */
export class Migration20261207165733 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "customer_relationship_counts" ("customer_id" uuid not null, "relationships" int not null default 0, constraint "customer_relationship_counts_pkey" primary key ("customer_id"));`,
    );
    this.addSql(
      `insert into "customer_relationship_counts" ("customer_id", "relationships") select "customer_id", count(*) from "relationships" group by "customer_id";`,
    );
    this.addSql(`create function count_inserted_relationships() returns trigger language plpgsql as $$
begin
  insert into customer_relationship_counts as counts (customer_id, relationships)
    select customer_id, count(*) from inserted_rows group by customer_id
  on conflict (customer_id) do update set relationships = counts.relationships + excluded.relationships;
  return null;
end $$;`);
    this.addSql(`create function count_deleted_relationships() returns trigger language plpgsql as $$
begin
  update customer_relationship_counts as counts set relationships = greatest(counts.relationships - gone.n, 0)
    from (select customer_id, count(*) as n from deleted_rows group by customer_id) as gone
   where counts.customer_id = gone.customer_id;
  return null;
end $$;`);
    this.addSql(
      `create trigger relationships_counted_on_insert after insert on relationships referencing new table as inserted_rows for each statement execute function count_inserted_relationships();`,
    );
    this.addSql(
      `create trigger relationships_counted_on_delete after delete on relationships referencing old table as deleted_rows for each statement execute function count_deleted_relationships();`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists relationships_counted_on_delete on relationships;`);
    this.addSql(`drop trigger if exists relationships_counted_on_insert on relationships;`);
    this.addSql(`drop function if exists count_deleted_relationships();`);
    this.addSql(`drop function if exists count_inserted_relationships();`);
    this.addSql(`drop table if exists "customer_relationship_counts" cascade;`);
  }
}
