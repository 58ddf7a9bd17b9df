import { Migration } from '@mikro-orm/migrations';

export class Migration20261204012144 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "customers" add column "deleted_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "customers" drop column "deleted_at";`);
  }

}
