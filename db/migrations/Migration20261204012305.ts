import { Migration } from '@mikro-orm/migrations';

export class Migration20261204012305 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "webhook_deliveries_job_id_index" on "webhook_deliveries" ("job_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "webhook_deliveries_job_id_index";`);
  }

}
