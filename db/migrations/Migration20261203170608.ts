import { Migration } from '@mikro-orm/migrations';

export class Migration20261203170608 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "jobs_customer_unfinished_index" on "jobs" ("customer_id", "state") where "state" in ('queued', 'delayed', 'active');`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "jobs_customer_unfinished_index";`);
  }

}
