import { Migration } from '@mikro-orm/migrations';

export class Migration20261122043115 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "jobs" add column "queue_job_id" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "jobs" drop column "queue_job_id";`);
  }

}
