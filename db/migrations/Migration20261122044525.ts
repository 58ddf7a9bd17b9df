import { Migration } from '@mikro-orm/migrations';

export class Migration20261122044525 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "jobs_created_at_index" on "jobs" ("created_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "jobs_created_at_index";`);
  }

}
