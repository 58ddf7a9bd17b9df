import { Migration } from '@mikro-orm/migrations';

export class Migration20261204011906 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "jobs_customer_type_state_index" on "jobs" ("customer_id", "type", "state", "id") where "state" <> 'completed';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "jobs_customer_type_state_index";`);
  }

}
