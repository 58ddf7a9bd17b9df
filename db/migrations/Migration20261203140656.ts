import { Migration } from '@mikro-orm/migrations';

export class Migration20261203140656 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "jobs" add column "schedule_name" text null;`);
    this.addSql(`create index "jobs_schedule_index" on "jobs" ("customer_id", "schedule_name", "id") where "schedule_name" is not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "jobs_schedule_index";`);
    this.addSql(`alter table "jobs" drop column "schedule_name";`);
  }

}
